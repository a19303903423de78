package agent

import (
	"testing"

	"github.com/tailer-backup/tailer/internal/wbatch"
)

func TestContinuityBatch(t *testing.T) {
	cases := []struct {
		name     string
		want     uint64
		h        wbatch.Header
		verdict  verdict
		wantNext uint64
	}{
		{"already shipped", 10, wbatch.Header{Seq: 5, Count: 3}, skip, 10},
		{"ends just before want", 10, wbatch.Header{Seq: 8, Count: 2}, skip, 10},
		{"exact next", 10, wbatch.Header{Seq: 10, Count: 4}, take, 14},
		{"exact next, one record", 10, wbatch.Header{Seq: 10, Count: 1}, take, 11},
		{"gap", 10, wbatch.Header{Seq: 12, Count: 1}, gap, 10},
		{"straddle", 10, wbatch.Header{Seq: 9, Count: 3}, straddle, 10},
		{"empty batch at want", 10, wbatch.Header{Seq: 10, Count: 0}, skip, 10},
		{"empty batch after want", 10, wbatch.Header{Seq: 50, Count: 0}, skip, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := continuity{want: c.want, emptyPolls: 2}
			if got := k.batch(c.h); got != c.verdict {
				t.Fatalf("verdict %d, want %d", got, c.verdict)
			}
			if k.want != c.wantNext {
				t.Fatalf("want moved to %d, expected %d", k.want, c.wantNext)
			}
		})
	}
}

func TestContinuityPoll(t *testing.T) {
	cases := []struct {
		name   string
		before int // empty polls so far
		seen   int
		latest uint64 // store's newest sequence number; want is 10
		gap    bool
		after  int
	}{
		{"batches seen", 2, 1, 50, false, 0},
		{"nothing new, store did not move", 2, 0, 9, false, 0},
		{"nothing new, store at want-1 exactly", 1, 0, 9, false, 0},
		{"empty poll below the threshold", 0, 0, 10, false, 1},
		{"second empty poll", 1, 0, 50, false, 2},
		{"empty poll at the threshold", emptyPollsForGap - 1, 0, 10, true, emptyPollsForGap},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := continuity{want: 10, emptyPolls: c.before}
			if got := k.poll(c.seen, c.latest); got != c.gap {
				t.Fatalf("gap %v, want %v", got, c.gap)
			}
			if k.emptyPolls != c.after {
				t.Fatalf("emptyPolls %d, want %d", k.emptyPolls, c.after)
			}
		})
	}
}

// TestContinuityRun feeds a sequence: a read, re-reads of what is
// already had, an empty batch, the next batch, then a gap.
func TestContinuityRun(t *testing.T) {
	k := continuity{}
	k.reset(100)
	steps := []struct {
		h    wbatch.Header
		want verdict
	}{
		{wbatch.Header{Seq: 90, Count: 10}, skip},
		{wbatch.Header{Seq: 100, Count: 5}, take},
		{wbatch.Header{Seq: 100, Count: 5}, skip},
		{wbatch.Header{Seq: 105, Count: 0}, skip},
		{wbatch.Header{Seq: 105, Count: 2}, take},
		{wbatch.Header{Seq: 108, Count: 1}, gap},
	}
	for i, s := range steps {
		if got := k.batch(s.h); got != s.want {
			t.Fatalf("step %d: verdict %d, want %d", i, got, s.want)
		}
	}
	if k.want != 107 {
		t.Fatalf("want %d, expected 107", k.want)
	}
}
