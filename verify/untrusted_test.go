package verify

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/replicatest"
)

// TestVerifyBoundsMemoryOnHostileObject: a planted segment of 8 KiB whose
// zstd body decompresses to a 256 MiB batch that its trailer vouches for
// is reported as a corrupt object, with little memory allocated, in both
// the quick and the deep check.
func TestVerifyBoundsMemoryOnHostileObject(t *testing.T) {
	r := replicatest.Build(t, replicatest.Spec{Tx: 8, PerSegment: 4})
	last := r.Segments[len(r.Segments)-1]
	r.Replace(t, last.Key, replicatest.Inflate(t, r.Read(t, last.Key), last.First, 256<<20))
	for _, deep := range []bool{false, true} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rep, err := Run(context.Background(), Options{Replica: r.R, Deep: deep, Temp: t.TempDir()})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range rep.Problems {
			found = found || (p.Object == last.Key && strings.Contains(p.Problem, "decompresses to"))
		}
		if !found {
			t.Errorf("deep=%v: problems %v do not report %s", deep, rep.Problems, last.Key)
		}
		if n, bound := after.TotalAlloc-before.TotalAlloc, uint64(64<<20); n > bound {
			t.Errorf("deep=%v: verify allocated %d MiB, more than %d MiB", deep, n>>20, bound>>20)
		}
	}
}
