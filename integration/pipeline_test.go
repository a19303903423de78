package integration

import (
	"context"
	"errors"
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

// TestKill9DuringPipelinedSeals kills `tailer run` with SIGKILL while it
// captures, seals and uploads at once: --max-delay 20ms under a steady
// load keeps a segment being compressed or committed on the sealer
// goroutine, one waiting behind it, and the shipper uploading earlier
// ones at nearly every moment, so the kills land between a batch being
// read and its segment being in the spool, between two commits, and
// during uploads. After each restart the generation must continue from
// what the spool and the bucket hold: its segments tile the sequence
// range with no hole and no duplicated batch, and restores at marks taken
// throughout equal the primary.
func TestKill9DuringPipelinedSeals(t *testing.T) {
	bin, err := buildTailer()
	if err != nil {
		t.Fatalf("build tailer: %v", err)
	}
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	srv.CreateBucket("pipe")
	url := srv.URL("pipe", "stalwart")
	var (
		mu      sync.Mutex
		marks   []loadgen.Mark
		marking atomic.Bool
		g       *loadgen.Generator
	)
	dir := t.TempDir()
	g, err = loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: 16, WriteBufferSize: 256 << 10,
		MaxTotalWALSize: -1, AfterTx: func(tx loadgen.Tx) error {
			if !marking.Load() || tx.N%400 != 0 {
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
			"--replica", url, "--max-delay", "20ms", "--listen", "", "--log-format", "json")
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
		_, err := e.gen.Run(loadCtx, 0, 1500)
		loadDone <- err
	}()
	cmd = killAndRestart(t, cmd, start, 8, 16, 300*time.Millisecond, 600*time.Millisecond)
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
		t.Fatalf("%d generations after 8 crashes, want the first one continued", len(gens))
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
	// Far more segments than restarts: the kills met a pipeline that was
	// sealing, not an idle one.
	if len(gen.Segments) < 16 {
		t.Fatalf("only %d segments: the load did not keep the sealer busy", len(gen.Segments))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(marks) < 4 {
		t.Fatalf("only %d marks recorded during the crash loop", len(marks))
	}
	for _, m := range append(marks, final) {
		e.checkRestore(m)
	}
	t.Logf("8 SIGKILLs; %d segments tile %d..%d; %d marks restored equal", len(gen.Segments), gen.Exports[0].Seq+1, next-1, len(marks)+1)
}
