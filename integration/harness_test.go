package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/miniotest"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// backend makes a fresh, empty replica for one test.
type backend struct {
	name string
	open func(t *testing.T) uploader.Replica
}

// backends are the replica kinds every end-to-end test runs against.
func backends() []backend {
	return []backend{
		{"file", func(t *testing.T) uploader.Replica {
			return openReplica(t, "file://"+filepath.Join(t.TempDir(), "bucket"), uploader.Options{})
		}},
		{"minio", func(t *testing.T) uploader.Replica {
			srv := miniotest.Start(t)
			srv.SetEnv(t)
			srv.CreateBucket("backups")
			return openReplica(t, srv.URL("backups", "stalwart/prod"), uploader.Options{})
		}},
	}
}

func openReplica(t *testing.T, url string, o uploader.Options) uploader.Replica {
	t.Helper()
	r, err := uploader.Open(context.Background(), url, o)
	if err != nil {
		t.Fatalf("open replica %s: %v", url, err)
	}
	return r
}

// env is one primary, one replica and a tailer that can be started and
// stopped.
type env struct {
	t       *testing.T
	dir     string
	gen     *loadgen.Generator
	replica uploader.Replica
	stop    func()
}

func newEnv(t *testing.T, b backend, seed int64) *env {
	dir := t.TempDir()
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: seed, WriteBufferSize: 256 << 10,
		// RocksDB's default WAL cap, as Stalwart (which never sets it): the
		// aggressive default of the load generator deletes WAL files within
		// milliseconds at full speed, faster than any poll (WAL pinning is
		// issue 6).
		MaxTotalWALSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	e := &env{t: t, dir: dir, gen: g, replica: b.open(t)}
	t.Cleanup(e.stopTailer)
	return e
}

// startTailer runs the agent in the background, polling fast, and waits
// until the replica can restore the primary's state at start: marks taken
// afterwards are then covered even when the agent starts a generation.
func (e *env) startTailer() {
	e.t.Helper()
	e.runTailer()
	e.waitRestorable(e.gen.Store().DB.GetLatestSequenceNumber())
}

func (e *env) runTailer() {
	e.t.Helper()
	e.runAgent(agent.Config{Poll: 25 * time.Millisecond})
}

// runAgent runs an agent with cfg in the background, filling in the
// primary, a scratch directory beside it, the replica and the test's
// logger where cfg leaves them empty; stopTailer ends it and reports an
// error it returned.
func (e *env) runAgent(cfg agent.Config) {
	e.t.Helper()
	if cfg.DB == "" {
		cfg.DB = e.gen.Dir()
	}
	if cfg.Scratch == "" {
		cfg.Scratch = filepath.Join(e.dir, "scratch")
	}
	if cfg.Replica == nil && len(cfg.Replicas) == 0 {
		cfg.Replica = e.replica
	}
	if cfg.Log == nil {
		cfg.Log = testLogger(e.t)
	}
	a, err := agent.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("tailer run: %v", err)
		}
	}
}

func (e *env) stopTailer() {
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
}

// load writes n transactions.
func (e *env) load(n int) {
	e.t.Helper()
	if _, err := e.gen.Run(context.Background(), n, 0); err != nil {
		e.t.Fatal(err)
	}
}

// mark records the primary's state now.
func (e *env) mark() loadgen.Mark {
	e.t.Helper()
	m, err := e.gen.Mark(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// waitRestorable waits until the replica's newest generation can restore seq.
func (e *env) waitRestorable(seq uint64) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var newest uint64
	for time.Now().Before(deadline) {
		gens := e.generations()
		if len(gens) > 0 {
			if n, ok := gens[len(gens)-1].NewestRestorable(); ok {
				if newest = n; n >= seq {
					return
				}
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Fatalf("sequence %d never became restorable (newest restorable: %d)", seq, newest)
}

func (e *env) generations() []layout.Generation {
	gens, _, err := catalog.List(context.Background(), e.replica, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return gens
}

// restoreAt restores into a new directory (seq 0: newest) and returns the result.
func (e *env) restoreAt(seq uint64) (restore.Result, error) {
	to := filepath.Join(e.dir, fmt.Sprintf("restore-%d-%d", seq, time.Now().UnixNano()))
	tgt := restore.Target{Seq: seq, HasSeq: seq > 0}
	return restore.Run(context.Background(), restore.Options{Replica: e.replica, To: to, Target: tgt, Digests: true, VerifyLoad: true, Log: testLogger(e.t)})
}

// checkRestore restores at m.Seq and compares every family with the mark.
func (e *env) checkRestore(m loadgen.Mark) {
	e.t.Helper()
	res, err := e.restoreAt(m.Seq)
	if err != nil {
		e.t.Fatalf("restore at seq %d: %v", m.Seq, err)
	}
	if res.Seq != m.Seq {
		e.t.Fatalf("restore at seq %d stopped at %d (%s)", m.Seq, res.Seq, res.Note)
	}
	if err := loadgen.CompareMark(m, res.Families); err != nil {
		e.t.Fatalf("restore at seq %d differs from the primary: %v", m.Seq, err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// restoreBy2 restores seq of one generation and returns its digests.
func (e *env) restoreBy2(seq uint64, gen string) ([]segment.FamilySum, error) {
	res, err := restore.Run(context.Background(), restore.Options{Replica: e.replica,
		To:     filepath.Join(e.dir, fmt.Sprintf("restore-%s-%d", gen, seq)),
		Target: restore.Target{Seq: seq, HasSeq: true, Generation: gen}, Digests: true, VerifyLoad: true, Log: testLogger(e.t)})
	return res.Families, err
}

// tailerLog creates dir/tailer.log for a tailer subprocess's output, and
// shows its tail if the test fails.
func tailerLog(t *testing.T, dir string) *os.File {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, "tailer.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("tailer log tail:\n%s", b)
		}
	})
	return logf
}
