package restore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tailer-backup/tailer/internal/replicatest"
)

// TestRestoreProgress: Options.Progress hears the download in bytes
// against the plan's sizes and the load in keys against the export's
// record count, never going backwards, each ending at its total.
func TestRestoreProgress(t *testing.T) {
	r := replicatest.Build(t, replicatest.Spec{Tx: 12, ExportsAfter: []int{4}, PerSegment: 4})
	type call struct{ done, total int64 }
	calls := map[string][]call{}
	var order []string
	res, err := Run(context.Background(), Options{Replica: r.R, To: filepath.Join(t.TempDir(), "db"),
		Progress: func(phase string, done, total int64) {
			if len(order) == 0 || order[len(order)-1] != phase {
				order = append(order, phase)
			}
			calls[phase] = append(calls[phase], call{done, total})
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 2 || order[0] != "download" || order[1] != "load" {
		t.Fatalf("phases %v, want download then load", order)
	}
	var planned int64
	for _, e := range r.Exports {
		if e.Seq == res.ExportSeq {
			planned += e.Size
		}
	}
	for _, s := range r.Segments {
		if s.First > res.ExportSeq {
			planned += s.Size
		}
	}
	for phase, want := range map[string]int64{"download": planned, "load": int64(res.Keys)} {
		cs := calls[phase]
		for i, c := range cs {
			if c.total != want || c.done > c.total || (i > 0 && c.done < cs[i-1].done) {
				t.Fatalf("%s call %d: %d of %d (want total %d, monotonic)", phase, i, c.done, c.total, want)
			}
		}
		if last := cs[len(cs)-1]; last.done != want {
			t.Fatalf("%s ended at %d of %d", phase, last.done, want)
		}
	}
	if res.Downloaded != planned {
		t.Fatalf("downloaded %d bytes, the plan holds %d", res.Downloaded, planned)
	}
}
