package compaction

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWorkDirKept: compaction works in a directory of its own inside
// --work-dir and removes only that: the directory and what else it holds
// stay.
func TestWorkDirKept(t *testing.T) {
	t.Parallel()
	f := newFixture(t, twoHoursAgo())
	work := t.TempDir()
	unrelated := filepath.Join(work, "unrelated")
	if err := os.WriteFile(unrelated, []byte("not tailer's"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), f.r, Options{Levels: []time.Duration{time.Minute}, LiveEdge: time.Minute, Grace: -1, WorkDir: work}, time.Now().Add(2*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Merged) == 0 {
		t.Fatal("nothing merged: the work dir was never used")
	}
	if b, err := os.ReadFile(unrelated); err != nil || string(b) != "not tailer's" {
		t.Fatalf("the unrelated file in the work dir is gone or changed: %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(work); len(entries) != 1 {
		t.Errorf("the work dir holds %v after compaction, want only the unrelated file", entries)
	}
}
