package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/promtest"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/spool"
)

// respelled is a replica under another URL spelling (as adding
// --s3-region or rewriting the endpoint gives an s3 replica): String
// differs, the objects and the Identity are the same. While down is set,
// uploads fail as in a bucket outage.
type respelled struct {
	uploader.Replica
	url  string
	down *atomic.Bool
}

func (r respelled) String() string   { return r.url }
func (r respelled) Identity() string { return r.Replica.Identity() }
func (r respelled) Put(ctx context.Context, key string, src io.Reader, size int64) error {
	if r.down.Load() {
		return errors.New("bucket unreachable")
	}
	return r.Replica.Put(ctx, key, src, size)
}

// runFor runs an agent with cfg until stop is called, which returns Run's error.
func runFor(t *testing.T, cfg agent.Config) (stop func() error) {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpoolSurvivesRespelledURL: a run against an unreachable replica
// leaves its generation (generation.json, export, segments) in the spool;
// the next start names the same replica differently. It must upload that
// spool and continue the same generation: no new generation, and every
// point restorable.
func TestSpoolSurvivesRespelledURL(t *testing.T) {
	base, primary, w, rep := primaryAndBucket(t, 50)
	var down atomic.Bool
	down.Store(true)
	cfg := func(url string, reg prometheus.Registerer) agent.Config {
		return agent.Config{DB: primary, Scratch: filepath.Join(base, "scratch"), Replica: respelled{rep, url, &down},
			Poll: 20 * time.Millisecond, LeaseTTL: -1, ShutdownTimeout: 50 * time.Millisecond, Registry: reg, Log: testLogger(t)}
	}

	reg1 := prometheus.NewRegistry()
	stop := runFor(t, cfg("s3://bkt/mail?endpoint=http://minio:9000", reg1))
	for i := 0; i < 40; i++ {
		w.tx(t)
	}
	first := w.st.DB.GetLatestSequenceNumber()
	firstDigests := w.digests(t)
	waitFor(t, "the first run to seal everything into the spool", func() bool {
		return promtest.Value(t, reg1, "tailer_last_shipped_seq") >= float64(first) && promtest.Value(t, reg1, "tailer_exports_total") == 1
	})
	if err := stop(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	if gens, _, err := catalog.List(context.Background(), rep, nil); err != nil || len(gens) != 0 {
		t.Fatalf("the replica was down, yet holds %d generations (%v)", len(gens), err)
	}

	down.Store(false)
	reg2 := prometheus.NewRegistry()
	stop = runFor(t, cfg("s3://bkt/mail/?endpoint=http://MINIO:9000/&region=eu-west-3", reg2))
	for i := 0; i < 40; i++ {
		w.tx(t)
	}
	second := w.st.DB.GetLatestSequenceNumber()
	waitShipped(t, rep, second)
	if err := stop(); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if n := promtest.Value(t, reg2, "tailer_generations_total"); n != 0 {
		t.Fatalf("the respelled run started %v new generations; want it to continue the spooled one", n)
	}
	gens, _, err := catalog.List(context.Background(), rep, nil)
	if err != nil || len(gens) != 1 {
		t.Fatalf("replica holds %d generations (%v), want 1", len(gens), err)
	}
	res, err := restore.Run(context.Background(), restore.Options{Replica: rep, To: filepath.Join(base, "restore"), Target: restore.Target{Seq: first, HasSeq: true}, Digests: true})
	if err != nil || res.Seq != first || fmt.Sprint(res.Families) != fmt.Sprint(firstDigests) {
		t.Fatalf("restore at %d (sealed while the replica was down): reached %d, err %v, equal=%v", first, res.Seq, err, fmt.Sprint(res.Families) == fmt.Sprint(firstDigests))
	}
}

// syncBuffer is a log sink tests read while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOrphanedSpoolIsReported: a spool directory no configured replica
// owns, with objects in it, is named at start with its replica, what it
// holds and what to do; it is left alone.
func TestOrphanedSpoolIsReported(t *testing.T) {
	base := t.TempDir()
	primary := filepath.Join(base, "primary")
	w := newWriter(t, primary)
	w.tx(t)
	spoolRoot := filepath.Join(base, "scratch", "spool")
	gone, err := uploader.Open(context.Background(), "file://"+filepath.Join(base, "old-bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sp, _, err := spool.OpenReplicaSpool(spoolRoot, gone)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"generations/g/segments/a.tseg", "generations/g/segments/b.tseg"} {
		if err := sp.Add(k, []byte("pending")); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := uploader.Open(context.Background(), "file://"+filepath.Join(base, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	a, err := agent.New(agent.Config{DB: primary, Scratch: filepath.Join(base, "scratch"), Replica: rep,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_ = a
	out := logs.String()
	for _, want := range []string{"ORPHANED SPOOL", sp.Dir(), gone.String(), "objects=2", "bytes=14", "--replica"} {
		if !strings.Contains(out, want) {
			t.Errorf("start log lacks %q:\n%s", want, out)
		}
	}
	if n, err := os.ReadDir(sp.Dir()); err != nil || len(n) < 2 {
		t.Fatalf("orphaned spool was touched: %v entries, %v", len(n), err)
	}
}
