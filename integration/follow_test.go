package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/standby"
)

// follower runs standby.Follow in this process.
type follower struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
	seq    atomic.Uint64
	gen    atomic.Value // string
	final  standby.FollowStatus
	to     string
}

func (e *env) follow(interval time.Duration) *follower {
	f := &follower{t: e.t, done: make(chan error, 1), to: filepath.Join(e.dir, "standby")}
	f.gen.Store("")
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() {
		st, err := standby.Follow(ctx, standby.FollowOptions{Replica: e.replica, To: f.to, Interval: interval, Log: testLogger(e.t),
			Progress: func(s standby.FollowStatus) {
				f.gen.Store(s.Generation)
				f.seq.Store(s.Seq)
			}})
		f.final = st
		f.done <- err
	}()
	e.t.Cleanup(func() {
		if f.cancel != nil {
			f.stop()
		}
	})
	return f
}

// waitSeq waits until the follower equals the source at seq (in the
// newest generation when gen is "").
func (f *follower) waitSeq(seq uint64, gen string) {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if f.seq.Load() == seq && (gen == "" || f.gen.Load().(string) == gen) {
			return
		}
		select {
		case err := <-f.done:
			f.cancel = nil
			f.t.Fatalf("follower ended at seq %d: %v", f.seq.Load(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	f.t.Fatalf("follower never reached seq %d of %q (at %d of %s)", seq, gen, f.seq.Load(), f.gen.Load())
}

func (f *follower) stop() standby.FollowStatus {
	f.t.Helper()
	f.cancel()
	f.cancel = nil
	if err := <-f.done; err != nil {
		f.t.Fatalf("follower: %v", err)
	}
	return f.final
}

// checkStandby compares the stopped standby with the primary's mark.
func checkStandby(t *testing.T, dir string, m loadgen.Mark) {
	t.Helper()
	st, err := store.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Digests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := loadgen.CompareMark(m, got); err != nil {
		t.Fatalf("standby differs from the primary: %v", err)
	}
}

// TestFollowUnderLoad: a standby follows a primary written at a steady
// rate while tailer ships it to MinIO, and ends equal to the primary once
// the load stops. How far behind it stays is measured and logged (not
// asserted: it depends on the machine): at every 20 ms tick, how long ago
// the primary first went past the standby's position.
func TestFollowUnderLoad(t *testing.T) {
	e := newEnv(t, backends()[1], 11)
	e.load(200)
	e.startTailer()
	fw := e.follow(100 * time.Millisecond)

	type sample struct {
		at  time.Time
		seq uint64
	}
	var (
		history []sample // the primary's latest seq over time
		behind  []time.Duration
	)
	ctx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan error, 1)
	go func() {
		_, err := e.gen.Run(ctx, 0, 400)
		loadDone <- err
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	end := time.Now().Add(8 * time.Second)
	for now := range tick.C {
		history = append(history, sample{now, e.gen.Store().DB.GetLatestSequenceNumber()})
		pos := fw.seq.Load()
		if pos > 0 { // the first restore is done
			lag := time.Duration(0)
			if i := sort.Search(len(history), func(i int) bool { return history[i].seq > pos }); i < len(history) {
				lag = now.Sub(history[i].at)
			}
			behind = append(behind, lag)
		}
		if now.After(end) {
			break
		}
	}
	tick.Stop()
	stopLoad()
	if err := <-loadDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	final := e.mark()
	e.waitRestorable(final.Seq)
	fw.waitSeq(final.Seq, "")
	st := fw.stop()
	checkStandby(t, fw.to, final)

	if len(behind) == 0 {
		t.Fatal("the follower never finished its first restore during the load")
	}
	sorted := append([]time.Duration(nil), behind...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	t.Logf("standby behind the primary under %d tx/s (tailer poll 25ms, follow interval 100ms, MinIO): mean %s, median %s, p95 %s, max %s over %d samples; %d batches applied, ended equal at seq %d",
		400, (sum / time.Duration(len(sorted))).Round(time.Millisecond), sorted[len(sorted)/2].Round(time.Millisecond),
		sorted[len(sorted)*95/100].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond), len(sorted), st.Batches, final.Seq)
}

// TestFollowNewGeneration: tailer is stopped, the primary flushes until
// the WAL tailer needs is gone, tailer restarts with a new generation:
// the standby re-bases from the new export and ends equal to the primary.
func TestFollowNewGeneration(t *testing.T) {
	e := newEnv(t, backends()[0], 12)
	e.load(200)
	e.startTailer()
	fw := e.follow(50 * time.Millisecond)
	e.load(300)
	before := e.mark()
	e.waitRestorable(before.Seq)
	first := e.generations()[0].ID
	fw.waitSeq(before.Seq, first)
	e.stopTailer()

	e.load(300)
	for i := 0; i < 2; i++ {
		if err := e.gen.Flush(); err != nil {
			t.Fatal(err)
		}
		e.load(100)
	}
	e.startTailer()
	e.load(200)
	final := e.mark()
	e.waitRestorable(final.Seq)
	gens := e.generations()
	if len(gens) != 2 {
		t.Fatalf("%d generations after a WAL gap, want 2", len(gens))
	}
	fw.waitSeq(final.Seq, gens[1].ID)
	st := fw.stop()
	if st.Rebuilds != 2 {
		t.Fatalf("follower status %+v: want the first restore and one re-base", st)
	}
	checkStandby(t, fw.to, final)
}

// TestKill9Follower: the real `tailer restore --follow` is killed with
// SIGKILL five times while the primary is written and shipped, and
// restarted each time. It must continue from its own store each time
// (one build only, no batch re-applied: the counter merges would differ;
// none skipped) and end equal to the primary after a SIGTERM. `tailer
// status --db` then finds the replica holding the primary's latest state.
func TestKill9Follower(t *testing.T) {
	bin, err := buildTailer()
	if err != nil {
		t.Fatalf("build tailer: %v", err)
	}
	e := newEnv(t, backends()[0], 13)
	url := e.replica.String()
	e.load(200)
	e.startTailer()
	to := filepath.Join(e.dir, "standby")
	logPath := filepath.Join(e.dir, "follow.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("follower log tail:\n%s", b)
		}
	})
	var stdout bytes.Buffer
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "restore", "--follow", "--replica", url, "--to", to, "--interval", "20ms", "--log-format", "json", "--log-level", "debug")
		cmd.Stdout, cmd.Stderr = &stdout, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := start()
	waitLog(t, logPath, func(l logLine) bool { return l.Msg == "applied" || l.Msg == "standby built" }, 0)

	ctx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan error, 1)
	go func() {
		_, err := e.gen.Run(ctx, 0, 500)
		loadDone <- err
	}()
	rng := rand.New(rand.NewSource(13))
	resumes := func() int {
		n := 0
		for _, l := range readLog(t, logPath) {
			if l.Msg == "resuming the standby" {
				n++
			}
		}
		return n
	}
	for i := 0; i < 5; i++ {
		// Each kill lands while the follower follows: after it resumed
		// (opening the store replays its WAL, which takes a moment).
		for deadline := time.Now().Add(30 * time.Second); resumes() < i; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the follower restarted after kill %d never resumed", i)
			}
		}
		// Every other kill comes soon after the resume, while the follower
		// replays the backlog that built up during the restart.
		if i%2 == 0 {
			time.Sleep(time.Duration(60+rng.Intn(200)) * time.Millisecond)
		} else {
			time.Sleep(time.Duration(200+rng.Intn(600)) * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		cmd = start()
	}
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	if err := <-loadDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	final := e.mark()
	e.waitRestorable(final.Seq)
	waitLog(t, logPath, func(l logLine) bool { return l.Msg == "applied" && l.Seq == final.Seq }, final.Seq)
	stdout.Reset()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("follower did not exit 0 on SIGTERM: %v", err)
	}
	if !strings.Contains(stdout.String(), "stopped at seq ") || !strings.Contains(stdout.String(), "to promote it") {
		t.Fatalf("follower's last words: %q", stdout.String())
	}
	checkStandby(t, to, final)

	lines := readLog(t, logPath)
	builds, resumed, midApply := 0, 0, 0
	var applied uint64
	for _, l := range lines {
		switch l.Msg {
		case "standby built":
			builds++
			applied = l.Seq
		case "applied":
			applied = l.Seq
		case "resuming the standby":
			resumed++
			if l.Seq < applied {
				t.Fatalf("resumed at seq %d, below the %d already applied and logged", l.Seq, applied)
			}
			if l.Seq > applied {
				midApply++ // killed inside a replay: RocksDB recovered more whole batches than were logged
			}
			applied = l.Seq
		}
	}
	if builds != 1 || resumed != 5 {
		t.Fatalf("%d builds and %d resumes in the log, want 1 build and 5 resumes after the kills", builds, resumed)
	}

	out, err := exec.Command(bin, "status", "--replica", url, "--db", e.gen.Dir(), "--scratch", t.TempDir(), "--json", "--max-lag", "1m").Output()
	if err != nil {
		t.Fatalf("tailer status: %v\n%s", err, out)
	}
	var sts []struct {
		Seq       uint64  `json:"newest_restorable_seq"`
		SeqBehind *uint64 `json:"seq_behind"`
		Lag       float64 `json:"lag_seconds"`
	}
	if err := json.Unmarshal(out, &sts); err != nil || len(sts) != 1 {
		t.Fatalf("tailer status --json: %v\n%s", err, out)
	}
	if s := sts[0]; s.Seq != final.Seq || s.SeqBehind == nil || *s.SeqBehind != 0 || s.Lag != 0 {
		t.Fatalf("tailer status: %s, want the primary's seq %d, 0 behind", out, final.Seq)
	}
	t.Logf("5 SIGKILLs of the follower under load (%d inside a replay): 1 build, 5 resumes, ended equal to the primary at seq %d", midApply, final.Seq)
}

// TestFollowRefusesOpenStore: `tailer restore --follow` into a store this
// (other) process has open fails with a line saying so.
func TestFollowRefusesOpenStore(t *testing.T) {
	bin, err := buildTailer()
	if err != nil {
		t.Fatalf("build tailer: %v", err)
	}
	rep := replicatest.Build(t, replicatest.Spec{Tx: 4})
	dir := filepath.Join(t.TempDir(), "stalwart")
	st, err := store.OpenWritable(dir, []string{"n", "l", "p"}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "restore", "--follow", "--replica", rep.URL, "--to", dir, "--log-format", "json").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("follow into an open store: %v, want exit 1:\n%s", err, out)
	}
	if !strings.Contains(string(out), "is open in another process (pid ") || !strings.Contains(string(out), "Stalwart?") {
		t.Fatalf("follow into an open store says:\n%s", out)
	}
}

type logLine struct {
	Msg string `json:"msg"`
	Seq uint64 `json:"seq"`
}

func readLog(t *testing.T, path string) []logLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// waitLog waits until a line of the log satisfies ok.
func waitLog(t *testing.T, path string, ok func(logLine) bool, want uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last uint64
	for time.Now().Before(deadline) {
		for _, l := range readLog(t, path) {
			if ok(l) {
				return
			}
			if l.Msg == "applied" {
				last = l.Seq
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the follower's log never showed what the test waits for (seq %d; last applied %d)", want, last)
}
