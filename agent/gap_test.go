package agent_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/internal/promtest"
)

// TestGapFoundWithoutNewWrites: the store wrote and deleted the WAL
// tailer needed while it was stopped, and writes nothing after it
// restarts. No WAL file then holds any batch, so only the empty-poll check
// can see the gap; it must start a new generation rather than wait, the
// replica stuck behind, for a write that brings a batch.
func TestGapFoundWithoutNewWrites(t *testing.T) {
	base, primary, w, rep := primaryAndBucket(t, 50)
	cfg := func(reg prometheus.Registerer) agent.Config {
		// No pins: nothing bridges what the primary deletes while tailer is down.
		return agent.Config{DB: primary, Scratch: filepath.Join(base, "scratch"), Replica: rep, Poll: 20 * time.Millisecond,
			PinInterval: -1, Registry: reg, Log: testLogger(t)}
	}
	stop := runFor(t, cfg(prometheus.NewRegistry()))
	waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber())
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		w.tx(t)
	}
	w.flush(t) // the primary deletes the WAL holding those batches
	latest := w.st.DB.GetLatestSequenceNumber()

	reg := prometheus.NewRegistry()
	stop = runFor(t, cfg(reg))
	defer stop()
	waitFor(t, "a new generation after the gap", func() bool { return promtest.Value(t, reg, "tailer_generations_total") == 1 })
	waitShipped(t, rep, latest)
	if promtest.Value(t, reg, "tailer_gaps_total") != 1 {
		t.Fatalf("tailer_gaps_total = %v, want 1", promtest.Value(t, reg, "tailer_gaps_total"))
	}
}
