package integration

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/compaction"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/promtest"
	"github.com/tailer-backup/tailer/retention"
)

// TestRunCompactsAndPrunes: `tailer run` itself merges its per-poll
// segments into wider ones and applies retention, in the background,
// while it keeps shipping; restores at marks stay equal to the primary.
func TestRunCompactsAndPrunes(t *testing.T) {
	e := newEnv(t, backends()[0], 10)
	e.load(100)
	reg := prometheus.NewRegistry()
	e.runAgent(agent.Config{Poll: 50 * time.Millisecond, Registry: reg,
		MaintenanceInterval: 300 * time.Millisecond,
		Compaction:          &compaction.Options{Levels: []time.Duration{time.Second}, LiveEdge: -1, Grace: -1},
		Retention:           retention.Policy{KeepExports: 1}})
	e.waitRestorable(e.gen.Store().DB.GetLatestSequenceNumber())

	var marks []loadgen.Mark
	for i := 0; i < 6; i++ {
		e.load(80)
		marks = append(marks, e.mark())
		time.Sleep(400 * time.Millisecond)
	}
	final := marks[len(marks)-1]
	e.waitRestorable(final.Seq)
	deadline := time.Now().Add(20 * time.Second)
	for promtest.Value(t, reg, "tailer_compaction_merged_total") == 0 || promtest.Value(t, reg, "tailer_compaction_deleted_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("run never compacted: merged %v, deleted %v", promtest.Value(t, reg, "tailer_compaction_merged_total"), promtest.Value(t, reg, "tailer_compaction_deleted_total"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.stopTailer()
	t.Logf("merged %v wide segments, deleted %v narrow ones, errors %v", promtest.Value(t, reg, "tailer_compaction_merged_total"),
		promtest.Value(t, reg, "tailer_compaction_deleted_total"), promtest.Value(t, reg, "tailer_maintenance_errors_total"))
	if n := promtest.Value(t, reg, "tailer_maintenance_errors_total"); n != 0 {
		t.Fatalf("%v maintenance rounds failed", n)
	}
	for _, m := range marks {
		e.checkRestore(m)
	}
}
