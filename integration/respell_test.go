package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/miniotest"
	"github.com/tailer-backup/tailer/internal/promtest"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/spool"
)

// TestReplicasRespelledURL: tailer stops during a bucket outage with
// segments still in its spool, and is restarted with the same replica
// spelled differently (no region, the endpoint's host upper-cased, a
// trailing slash). The spool must be found and uploaded (no directory
// left holding objects), the generation continued (no new one), and
// every mark restore equal to the primary.
func TestReplicasRespelledURL(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	srv.CreateBucket("respell")
	dir := t.TempDir()
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: 21, WriteBufferSize: 256 << 10, MaxTotalWALSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	url := srv.URL("respell", "mail")
	e := &env{t: t, dir: dir, gen: g, replica: openReplica(t, url, uploader.Options{})}
	e.load(200)
	reg := prometheus.NewRegistry()
	e.runAgent(agent.Config{Poll: 50 * time.Millisecond, Registry: reg, ShutdownTimeout: 500 * time.Millisecond})
	e.waitRestorable(g.Store().DB.GetLatestSequenceNumber())

	srv.Stop()
	e.load(300)
	during := e.mark()
	deadline := time.Now().Add(30 * time.Second)
	for promtest.Value(t, reg, "tailer_last_shipped_seq") < float64(during.Seq) {
		if time.Now().After(deadline) {
			t.Fatalf("seq %d never sealed into the spool", during.Seq)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if promtest.Value(t, reg, "tailer_spool_bytes") <= 0 {
		t.Fatal("the outage left nothing in the spool")
	}
	e.stopTailer()
	srv.Restart()

	host := strings.TrimPrefix(srv.Endpoint, "http://")
	respelled := "s3://respell//mail/?endpoint=http://" + strings.ToUpper(host) + "/&path-style=true"
	r2 := openReplica(t, respelled, uploader.Options{})
	if r2.String() == e.replica.String() {
		t.Fatalf("the respelled URL shows as the original %s: the test would prove nothing", r2)
	}
	reg2 := prometheus.NewRegistry()
	e.runAgent(agent.Config{Poll: 50 * time.Millisecond, Registry: reg2, Replica: r2})
	e.load(200)
	final := e.mark()
	e.waitRestorable(final.Seq)
	if n := promtest.Value(t, reg2, "tailer_generations_total"); n != 0 {
		t.Fatalf("restarted as %s, tailer started %v new generations; want the spooled one continued", r2, n)
	}
	e.stopTailer()
	// Every spool directory was uploaded: none is left orphaned under the
	// old spelling's name.
	spools, err := spool.ListSpools(filepath.Join(dir, "scratch", "spool"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range spools {
		if sp.Objects != 0 {
			t.Fatalf("spool %s still holds %d objects (%d bytes) after the respelled run", sp.Dir, sp.Objects, sp.Bytes)
		}
	}
	if gens := e.generations(); len(gens) != 1 {
		t.Fatalf("replica holds %d generations, want 1", len(gens))
	}
	for _, m := range []loadgen.Mark{during, final} {
		e.checkRestore(m)
	}
}
