package integration

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/miniotest"
	"github.com/tailer-backup/tailer/uploader"
)

// buildTailer builds the tailer command once per test binary run.
var buildTailer = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tailer-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tailer")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/tailer-backup/tailer/cmd/tailer").CombinedOutput()
	if err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

// TestKill9Loop kills `tailer run` with SIGKILL at random moments, ten
// times, while the primary is written, restarting it each time. The
// generation must continue across every crash with no missing and no
// duplicated batch (its segments tile the sequence range exactly), and
// restores at marks recorded throughout must equal the primary.
func TestKill9Loop(t *testing.T) {
	bin, err := buildTailer()
	if err != nil {
		t.Fatalf("build tailer: %v", err)
	}
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	srv.CreateBucket("crash")
	url := srv.URL("crash", "stalwart")
	// The load records a mark every 300 tx once marking is on.
	var (
		mu      sync.Mutex
		marks   []loadgen.Mark
		marking atomic.Bool
		g       *loadgen.Generator
	)
	dir := t.TempDir()
	g, err = loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: 6, WriteBufferSize: 256 << 10,
		MaxTotalWALSize: -1, AfterTx: func(tx loadgen.Tx) error {
			if !marking.Load() || tx.N%300 != 0 {
				return nil
			}
			m, err := g.Mark(context.Background())
			if err == nil {
				mu.Lock()
				marks = append(marks, m)
				mu.Unlock()
			}
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	e := &env{t: t, dir: dir, gen: g, replica: openReplica(t, url, uploader.Options{})}
	e.load(200)

	logf := tailerLog(t, e.dir)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--db", e.gen.Dir(), "--scratch", filepath.Join(e.dir, "scratch"),
			"--replica", url, "--poll", "100ms", "--listen", "", "--log-format", "json")
		cmd.Env = append(os.Environ(), srv.Env()...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := start()
	e.waitRestorable(e.gen.Store().DB.GetLatestSequenceNumber())

	marking.Store(true)
	loadCtx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan error, 1)
	go func() {
		_, err := e.gen.Run(loadCtx, 0, 800)
		loadDone <- err
	}()
	cmd = killAndRestart(t, cmd, start, 10, 7, 200*time.Millisecond, 1300*time.Millisecond)
	stopLoad()
	if err := <-loadDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	marking.Store(false)
	final := e.mark()
	e.waitRestorable(final.Seq)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tailer run did not exit 0 on SIGTERM after the crashes: %v", err)
	}

	gens := e.generations()
	if len(gens) != 1 {
		t.Fatalf("%d generations after 10 crashes, want the first one continued", len(gens))
	}
	gen := gens[0]
	next := gen.Exports[0].Seq + 1
	for _, s := range gen.Segments {
		if s.First != next {
			t.Fatalf("segment %d..%d after %d: a crash left a hole or a duplicated batch", s.First, s.Last, next-1)
		}
		next = s.Last + 1
	}
	if next-1 < final.Seq {
		t.Fatalf("segments end at %d, the primary at %d", next-1, final.Seq)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(marks) < 5 {
		t.Fatalf("only %d marks recorded during the crash loop", len(marks))
	}
	for _, m := range append(marks, final) {
		e.checkRestore(m)
	}
	t.Logf("10 SIGKILLs; %d segments tile %d..%d; %d marks restored equal", len(gen.Segments), gen.Exports[0].Seq+1, next-1, len(marks)+1)
}

// killAndRestart SIGKILLs a tailer subprocess n times, each after a
// pseudo-random pause in [least, least+spread) (seeded: the same moments
// each run), starting it again each time, then lets the last one run for
// half a second. It returns the process running then.
func killAndRestart(t *testing.T, cmd *exec.Cmd, start func() *exec.Cmd, n int, seed int64, least, spread time.Duration) *exec.Cmd {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	for range n {
		time.Sleep(least + time.Duration(rng.Int63n(int64(spread))))
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		cmd = start()
	}
	time.Sleep(500 * time.Millisecond)
	return cmd
}
