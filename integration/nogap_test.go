package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/promtest"
)

// TestNoGapUnderFullLoad: the load generator writes at full speed with
// 4 MiB write buffers and a WAL cap that makes the primary delete WAL
// files every few hundred milliseconds, while tailer polls at its default
// 1 s. With WAL pinning every batch must still be shipped in one
// generation (no gap), and the newest restore must equal the primary.
// TAILER_SOAK=10m runs it longer and logs the figures.
func TestNoGapUnderFullLoad(t *testing.T) {
	dur := 15 * time.Second
	if s := os.Getenv("TAILER_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("TAILER_SOAK=%q: %v", s, err)
		}
		dur = d
	}
	b := backends()[0]
	dir := t.TempDir()
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: 5, WriteBufferSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	e := &env{t: t, dir: dir, gen: g, replica: b.open(t)}

	reg := prometheus.NewRegistry()
	e.runAgent(agent.Config{Poll: time.Second, Registry: reg, PinInterval: pinInterval()})
	defer e.stopTailer()
	e.waitRestorable(g.Store().DB.GetLatestSequenceNumber())

	var wals sync.Map // WAL files seen on the primary, to report their turnover
	loadCtx, stopLoad := context.WithTimeout(context.Background(), dur)
	defer stopLoad()
	start := time.Now()
	go func() {
		for loadCtx.Err() == nil {
			if m, _ := filepath.Glob(filepath.Join(g.Dir(), "*.log")); m != nil {
				for _, f := range m {
					wals.Store(f, true)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	n, err := g.Run(loadCtx, 0, 0)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	final := e.mark()
	e.waitRestorable(final.Seq)
	e.stopTailer()
	left, _ := filepath.Glob(filepath.Join(g.Dir(), "*.log"))
	seenWALs := 0
	wals.Range(func(_, _ any) bool { seenWALs++; return true })
	gaps, pinned := promtest.Value(t, reg, "tailer_gaps_total"), promtest.Value(t, reg, "tailer_batches_from_pins_total")
	t.Logf("%d tx in %s (%.0f tx/s), seq %d; %d WAL files seen on the primary (%d left); gaps %v; batches read from pins %v",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), final.Seq, seenWALs, len(left), gaps, pinned)
	if gens := e.generations(); len(gens) != 1 || gaps != 0 {
		t.Fatalf("%d generations and %v gaps under full load: WAL pinning let batches slip", len(gens), gaps)
	}
	if seenWALs-len(left) < 3 {
		t.Fatalf("the primary deleted only %d WAL files: the load did not stress WAL deletion", seenWALs-len(left))
	}
	res, err := e.restoreAt(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := loadgen.CompareMark(final, res.Families); err != nil {
		t.Fatalf("newest restore after full load differs from the primary: %v", err)
	}
}

// pinInterval is the agent's default, or disabled with TAILER_NO_PINS=1
// (to measure what pinning saves; the test then fails, as it should).
func pinInterval() time.Duration {
	if os.Getenv("TAILER_NO_PINS") == "1" {
		return -1
	}
	return 0
}
