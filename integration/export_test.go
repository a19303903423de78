package integration

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/restore"
)

// TestExportsUnderWriteLoadAreConsistent takes hot exports (hard-linked
// snapshots of the live files) while the primary writes at full speed
// with its aggressive WAL cap (flushes and WAL deletions every few
// transactions), restores each one, and compares it with the primary's
// state at the export's sequence number, rebuilt by a second generator
// with the same seed (the load is a pure function of seed and tx count).
func TestExportsUnderWriteLoadAreConsistent(t *testing.T) {
	dir := t.TempDir()
	const seed = 4
	cfg := loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: seed, WriteBufferSize: 256 << 10}
	g, err := loadgen.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Run(context.Background(), 300, 0); err != nil {
		t.Fatal(err)
	}
	rep := backends()[0].open(t)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var loadErr error
	go func() {
		defer wg.Done()
		_, loadErr = g.Run(ctx, 0, 0)
	}()
	type exp struct {
		gen string
		seq uint64
	}
	var exps []exp
	for i := 0; i < 4; i++ {
		meta, res, err := agent.OnDemandExport(context.Background(), cfg.Dir, filepath.Join(dir, "scratch"), rep, testLogger(t), nil)
		if err != nil {
			stop()
			wg.Wait()
			t.Fatalf("export %d under load: %v", i, err)
		}
		exps = append(exps, exp{meta.ID, res.Seq})
	}
	stop()
	wg.Wait()
	if loadErr != nil && !errors.Is(loadErr, context.Canceled) {
		t.Fatal(loadErr)
	}
	if exps[0].seq == exps[len(exps)-1].seq {
		t.Fatalf("the primary did not move during the exports (all at %d): the test proves nothing", exps[0].seq)
	}

	// Replay the same load in a second store up to each export's sequence.
	twin, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "twin"), Seed: seed, WriteBufferSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer twin.Close()
	for _, e := range exps {
		for twin.Store().DB.GetLatestSequenceNumber() < e.seq {
			if _, err := twin.Tx(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if got := twin.Store().DB.GetLatestSequenceNumber(); got != e.seq {
			t.Fatalf("export at %d is not on a transaction boundary of the load (twin at %d)", e.seq, got)
		}
		want, err := twin.Mark(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		res, err := restore.Run(context.Background(), restore.Options{Replica: rep, To: filepath.Join(dir, "restore-"+e.gen),
			Target: restore.Target{Seq: e.seq, HasSeq: true, Generation: e.gen}, Digests: true})
		if err != nil {
			t.Fatalf("restore export %s at %d: %v", e.gen, e.seq, err)
		}
		if err := loadgen.CompareMark(want, res.Families); err != nil {
			t.Fatalf("hot export at %d differs from the primary's state at %d: %v", e.seq, e.seq, err)
		}
	}
	t.Logf("%d hot exports under load, at sequences %v, all equal the primary", len(exps), exps)
}
