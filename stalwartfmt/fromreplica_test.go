package stalwartfmt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/dumpsource"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/stalwartfmt"
	"github.com/tailer-backup/tailer/uploader"
)

// TestDumpFromReplicaPointInTime ships a Stalwart-like store with `tailer
// run` (a full export, then WAL segments with merges, deletes and range
// deletes), then writes Stalwart's files for a past sequence number and for
// the newest state straight from the replica. The past point is checked
// against a second generator with the same seed stopped after the same
// transactions (the generator's content is a pure function of seed and
// transaction number), the newest against the primary itself.
func TestDumpFromReplicaPointInTime(t *testing.T) {
	if testing.Short() {
		t.Skip("a live load generator, exports and restores at several points: skipped under -short")
	}
	tmp := t.TempDir()
	cfg := loadgen.Config{Dir: filepath.Join(tmp, "primary"), Seed: 17, Accounts: 6, WriteBufferSize: 256 << 10, MaxTotalWALSize: -1}
	g, err := loadgen.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	injectEdges(t, g.Store())
	if _, err := g.Run(context.Background(), 300, 0); err != nil {
		t.Fatal(err)
	}
	r, err := uploader.Open(context.Background(), "file://"+filepath.Join(tmp, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{DB: g.Dir(), Scratch: filepath.Join(tmp, "scratch"), Replica: r, Poll: 20 * time.Millisecond, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("tailer run: %v", err)
			}
		}
	}
	defer stop()
	waitRestorable(t, r, g.Store().DB.GetLatestSequenceNumber())

	const past = 500
	if _, err := g.Run(context.Background(), past-300, 0); err != nil {
		t.Fatal(err)
	}
	pastSeq := g.Store().DB.GetLatestSequenceNumber()
	if _, err := g.Run(context.Background(), 300, 0); err != nil {
		t.Fatal(err)
	}
	newest := g.Store().DB.GetLatestSequenceNumber()
	waitRestorable(t, r, newest)
	stop()

	// The past point, from the export and the segments after it.
	out := filepath.Join(tmp, "past")
	res, sum, err := dumpsource.FromReplica(context.Background(),
		restore.Options{Replica: r, Target: restore.Target{Seq: pastSeq, HasSeq: true}}, out, stalwartfmt.Options{Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Seq != pastSeq || sum.Seq != pastSeq || res.Batches == 0 {
		t.Fatalf("restore stopped at %d (summary %d, %d batches replayed), want %d from segments", res.Seq, sum.Seq, res.Batches, pastSeq)
	}
	refCfg := cfg
	refCfg.Dir = filepath.Join(tmp, "reference")
	ref, err := loadgen.Open(refCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	injectEdges(t, ref.Store())
	if _, err := ref.Run(context.Background(), past, 0); err != nil {
		t.Fatal(err)
	}
	got, err := readDump(out)
	if err != nil {
		t.Fatal(err)
	}
	compareDump(t, got, expectedDump(t, ref.Store()), 6)

	// The newest state.
	out = filepath.Join(tmp, "newest")
	res, _, err = dumpsource.FromReplica(context.Background(), restore.Options{Replica: r}, out, stalwartfmt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Seq != newest {
		t.Fatalf("newest restore at %d, primary at %d", res.Seq, newest)
	}
	if got, err = readDump(out); err != nil {
		t.Fatal(err)
	}
	compareDump(t, got, expectedDump(t, g.Store()), 6)
	if left, _ := filepath.Glob(filepath.Join(tmp, ".*")); len(left) != 0 {
		t.Fatalf("temporary directories left beside the output: %v", left)
	}
}

// waitRestorable waits until the replica's newest generation restores seq.
func waitRestorable(t *testing.T, r uploader.Replica, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		gens, _, err := catalog.List(context.Background(), r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(gens) > 0 {
			if n, ok := gens[len(gens)-1].NewestRestorable(); ok && n >= seq {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sequence %d never became restorable", seq)
}
