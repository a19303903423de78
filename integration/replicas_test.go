package integration

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/miniotest"
	"github.com/tailer-backup/tailer/internal/promtest"
	"github.com/tailer-backup/tailer/uploader"
)

// newestRestorable is the newest sequence a replica can restore (0: none).
func newestRestorable(t *testing.T, r uploader.Replica) uint64 {
	gens, _, err := catalog.List(context.Background(), r, nil)
	if err != nil || len(gens) == 0 {
		return 0
	}
	n, _ := gens[len(gens)-1].NewestRestorable()
	return n
}

// TestTwoReplicasOneOutage ships to two MinIO servers; one is stopped for
// a while under load. The other must stay current meanwhile, the stopped
// one must catch up when it returns, both in one generation, and restores
// from each must equal the primary at every mark.
func TestTwoReplicasOneOutage(t *testing.T) {
	a1, a2 := miniotest.Start(t), miniotest.Start(t)
	a1.CreateBucket("onsite")
	a2.CreateBucket("offsite")
	r1 := openReplica(t, a1.URL("onsite", "mail"), uploader.Options{AccessKeyID: a1.AccessKey, SecretAccessKey: a1.SecretKey})
	r2 := openReplica(t, a2.URL("offsite", "mail"), uploader.Options{AccessKeyID: a2.AccessKey, SecretAccessKey: a2.SecretKey})

	dir := t.TempDir()
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: 13, WriteBufferSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	e := &env{t: t, dir: dir, gen: g, replica: r1}
	e.load(200)
	reg := prometheus.NewRegistry()
	ag, err := agent.New(agent.Config{DB: g.Dir(), Scratch: filepath.Join(dir, "scratch"), Replicas: []uploader.Replica{r1, r2},
		Poll: 50 * time.Millisecond, Registry: reg, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitBoth := func(seq uint64) {
		deadline := time.Now().Add(60 * time.Second)
		for newestRestorable(t, r1) < seq || newestRestorable(t, r2) < seq {
			if time.Now().After(deadline) {
				t.Fatalf("replicas at %d and %d, want %d", newestRestorable(t, r1), newestRestorable(t, r2), seq)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	waitBoth(g.Store().DB.GetLatestSequenceNumber())
	e.load(200)
	marks := []loadgen.Mark{e.mark()}
	waitBoth(marks[0].Seq)

	a2.Stop()
	stoppedAt := time.Now()
	var worst time.Duration
	for i := 0; i < 4; i++ {
		e.load(250)
		m := e.mark()
		marks = append(marks, m)
		start := time.Now()
		e.waitRestorable(m.Seq) // on r1, the replica that is up
		worst = max(worst, time.Since(start))
	}
	time.Sleep(2*time.Second - time.Since(stoppedAt)) // an outage of at least 2 s, however fast the rest
	spool2, lag2 := promtest.Labeled(t, reg, "tailer_spool_bytes", "replica", r2.String()), promtest.Labeled(t, reg, "tailer_upload_lag_seconds", "replica", r2.String())
	lag1 := promtest.Labeled(t, reg, "tailer_upload_lag_seconds", "replica", r1.String())
	a2.Restart()
	final := marks[len(marks)-1]
	waitBoth(final.Seq)
	t.Logf("while the off-site replica was down (its spool %v bytes, upload lag %.1fs), the on-site one (lag %.1fs) covered each mark within %s (worst); both then reached %d",
		spool2, lag2, lag1, worst.Round(time.Millisecond), final.Seq)
	if spool2 <= 0 || lag2 < 1 {
		t.Fatalf("the stopped replica shows spool %v bytes and lag %vs: the outage did not show", spool2, lag2)
	}
	if lag1 >= lag2 {
		t.Fatalf("the live replica lagged %vs, as much as the stopped one (%vs): one bucket held back the other", lag1, lag2)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // let the deferred cleanup return
	for _, r := range []uploader.Replica{r1, r2} {
		gens, _, err := catalog.List(context.Background(), r, nil)
		if err != nil || len(gens) != 1 {
			t.Fatalf("%s: %d generations (%v), want 1", r, len(gens), err)
		}
		e.replica = r
		for _, m := range marks {
			e.checkRestore(m)
		}
	}
}
