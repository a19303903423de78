package integration

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/miniotest"
	"github.com/tailer-backup/tailer/internal/promtest"
	"github.com/tailer-backup/tailer/uploader"
)

// TestBucketOutage stops MinIO for several seconds while the primary is
// written: tailer keeps tailing into the spool (or, with a small spool
// cap, pauses sealing while the WAL pins keep the batches), and when the
// bucket returns it catches up in the same generation; every mark taken
// before, during and after the outage restores equal to the primary.
func TestBucketOutage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		spoolMax int64
	}{{"unbounded spool", 0}, {"spool cap", 64 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := miniotest.Start(t)
			srv.SetEnv(t)
			srv.CreateBucket("outage")
			dir := t.TempDir()
			g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: 8, WriteBufferSize: 256 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			e := &env{t: t, dir: dir, gen: g, replica: openReplica(t, srv.URL("outage", "p"), uploader.Options{})}
			e.load(200)

			reg := prometheus.NewRegistry()
			e.runAgent(agent.Config{Poll: 50 * time.Millisecond, Registry: reg, SpoolMaxBytes: tc.spoolMax})
			defer e.stopTailer()
			e.waitRestorable(g.Store().DB.GetLatestSequenceNumber())

			var marks []loadgen.Mark
			e.load(300)
			marks = append(marks, e.mark())
			e.waitRestorable(marks[0].Seq)

			srv.Stop()
			for i := 0; i < 4; i++ {
				e.load(300)
				marks = append(marks, e.mark())
				time.Sleep(500 * time.Millisecond)
			}
			spool, lag := promtest.Value(t, reg, "tailer_spool_bytes"), promtest.Value(t, reg, "tailer_upload_lag_seconds")
			full := promtest.Value(t, reg, "tailer_spool_full")
			if tc.spoolMax > 0 {
				// Paused: more writes do not grow the spool.
				e.load(300)
				marks = append(marks, e.mark())
				time.Sleep(300 * time.Millisecond)
				if after := promtest.Value(t, reg, "tailer_spool_bytes"); full != 1 || after != spool {
					t.Fatalf("spool cap %d: full=%v, spool went from %v to %v bytes while the bucket was down; want sealing paused", tc.spoolMax, full, spool, after)
				}
			}
			srv.Restart()

			e.load(300)
			final := e.mark()
			marks = append(marks, final)
			e.waitRestorable(final.Seq)
			t.Logf("during the outage: spool %v bytes, upload lag %.1fs, spool full %v; after: %v upload errors retried",
				spool, lag, full, promtest.Value(t, reg, "tailer_upload_errors_total"))
			if spool <= 0 || lag <= 0 {
				t.Fatalf("the outage did not show: spool bytes %v, lag %v", spool, lag)
			}
			if got := promtest.Value(t, reg, "tailer_spool_bytes"); got != 0 {
				t.Fatalf("spool still holds %v bytes after catching up", got)
			}
			if gens := e.generations(); len(gens) != 1 {
				t.Fatalf("%d generations after a bucket outage, want 1", len(gens))
			}
			for i, m := range marks {
				t.Run(fmt.Sprint("mark", i), func(t *testing.T) { e.checkRestore(m) })
			}
		})
	}
}
