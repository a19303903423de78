package compaction

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/segment"
)

// TestCompression: merged segments are written at Options.Compression
// (DefaultCompression when unset): each merged object is byte for byte
// what the segment writer gives for its batches at that level, and not
// what it gives at the others. The narrow segments were sealed at the
// writer's default, so this also shows a replica mixing levels restores
// (compaction verified the merged copy before deleting the narrow ones).
func TestCompression(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  segment.Level
		want segment.Level
	}{
		{"default", 0, DefaultCompression},
		{"fastest", segment.LevelFastest, segment.LevelFastest},
		{"best", segment.LevelBest, segment.LevelBest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, twoHoursAgo())
			rep, err := Run(context.Background(), f.r, Options{Levels: []time.Duration{10 * time.Minute}, LiveEdge: time.Minute, Grace: -1,
				Compression: tc.set}, time.Now().Add(2*time.Minute), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Merged) != 2 || len(rep.Deleted) != fixtureSegments {
				t.Fatalf("merged %d, deleted %d", len(rep.Merged), len(rep.Deleted))
			}
			for _, m := range rep.Merged {
				stored, err := os.ReadFile(filepath.Join(f.root, filepath.FromSlash(m.Key)))
				if err != nil {
					t.Fatal(err)
				}
				distinct := 0
				for _, l := range segment.Levels() {
					same := bytes.Equal(rewrite(t, stored, l), stored)
					if same != (l == tc.want) {
						t.Errorf("%s: stored bytes equal to a rewrite at %v: %v (compressed at %v expected)", m.Key, l, same, tc.want)
					}
					if !same {
						distinct++
					}
				}
				if distinct != len(segment.Levels())-1 {
					t.Errorf("%s: %d levels give other bytes, want %d (the fixture must tell levels apart)", m.Key, distinct, len(segment.Levels())-1)
				}
			}
			f.restoreAll(f.targets()) // compares with the source at every sequence target
		})
	}
	if _, err := New(nil, Options{Compression: segment.LevelBest + 1}, nil); !errors.Is(err, segment.ErrUnknownLevel) {
		t.Errorf("an unknown level: err = %v, want ErrUnknownLevel", err)
	}
}

// rewrite writes obj's batches and labels again under its header at l.
func rewrite(t *testing.T, obj []byte, l segment.Level) []byte {
	t.Helper()
	rd, err := segment.Open(bytes.NewReader(obj), int64(len(obj)), "merged")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var buf bytes.Buffer
	w, err := segment.NewSegmentWriter(&buf, rd.Header(), segment.WithLevel(l))
	if err != nil {
		t.Fatal(err)
	}
	w.SetLabels(rd.Trailer().Labels)
	for {
		b, err := rd.NextBatch()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
