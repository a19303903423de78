package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/internal/owned"
)

// TestScratchIsPrivate: everything tailer creates in its scratch directory
// holds links to, or copies of, the store's files (mail): the directories
// are owned.DirMode, the files tailer writes owned.FileMode.
func TestScratchIsPrivate(t *testing.T) {
	base, primary, w, rep := primaryAndBucket(t, 10)
	scratch := filepath.Join(base, "scratch")
	a, err := agent.New(agent.Config{DB: primary, Scratch: scratch, Replica: rep, Poll: 20 * time.Millisecond, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	w.tx(t)
	waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber())
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := map[string]os.FileMode{
		scratch: owned.DirMode, "wal-pins": owned.DirMode, "secondary": owned.DirMode,
		"snapshots": owned.DirMode, "spool": owned.DirMode,
		"tailer.lock": owned.FileMode, "instance-id": owned.FileMode,
	}
	for p, m := range want {
		if !filepath.IsAbs(p) {
			p = filepath.Join(scratch, p)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if st.Mode().Perm() != m {
			t.Errorf("mode of %s = %v, want %v", p, st.Mode().Perm(), m)
		}
	}
}
