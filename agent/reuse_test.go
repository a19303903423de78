package agent

import (
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/wbatch"
)

func TestReuseWhy(t *testing.T) {
	batch := func(seq uint64, keys ...string) *layout.BatchSum {
		b := wbatch.NewBuilder(seq)
		for _, k := range keys {
			b.Add(wbatch.Record{Op: wbatch.OpPut, CF: 3, Key: []byte(k), Value: []byte("v")})
		}
		sum, err := sumOf(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return &sum
	}
	shipped := *batch(9, "a", "b") // seqs 9..10
	for _, tc := range []struct {
		name   string
		stored *layout.BatchSum
		want   []string // substrings of the reason; none: the store still holds what was shipped
	}{
		{"the same batch", batch(9, "a", "b"), nil},
		{"no longer in the WAL (flushed, so durable)", nil, nil},
		{"other writes over the same sequence numbers", batch(9, "a", "c"),
			[]string{"the store's batch at seq 10 differs from the one shipped", "reused sequence numbers"}},
		{"a batch over other sequence numbers", batch(10, "x"),
			[]string{"seq 10 differs", "shipped batch 9..10, the store's 10..10"}},
		{"a longer batch holding the sequence number", batch(8, "x", "y", "z"),
			[]string{"shipped batch 9..10, the store's 8..10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := reuseWhy(10, shipped, tc.stored)
			if len(tc.want) == 0 {
				if got != "" {
					t.Fatalf("reuseWhy = %q, want no new generation", got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Fatalf("reuseWhy = %q, want it to say %q", got, w)
				}
			}
		})
	}
}
