package standby

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// follow runs Follow in the background; wait blocks until a status
// satisfies ok, stop cancels it and returns its result.
type follow struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	first  *FollowStatus // the first status reported: where the follower started or resumed
	last   FollowStatus
	seen   chan struct{}
	final  FollowStatus
}

func startFollow(t *testing.T, rep *replicatest.Replica, to string) *follow {
	t.Helper()
	return startFollowOn(t, rep.R, to)
}

func startFollowOn(t *testing.T, r uploader.Replica, to string) *follow {
	t.Helper()
	return startFollowWith(t, FollowOptions{Replica: r, To: to})
}

// startFollowWith starts a follower with opts (Interval and Progress are
// the test's).
func startFollowWith(t *testing.T, opts FollowOptions) *follow {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fw := &follow{t: t, cancel: cancel, done: make(chan error, 1), seen: make(chan struct{}, 1)}
	opts.Interval = 10 * time.Millisecond
	go func() {
		opts.Progress = func(s FollowStatus) {
			fw.mu.Lock()
			fw.last = s
			if fw.first == nil {
				fw.first = &s
			}
			fw.mu.Unlock()
			select {
			case fw.seen <- struct{}{}:
			default:
			}
		}
		st, err := Follow(ctx, opts)
		fw.final = st
		fw.done <- err
	}()
	t.Cleanup(func() {
		if fw.cancel != nil {
			fw.stop()
		}
	})
	return fw
}

func (fw *follow) wait(what string, ok func(FollowStatus) bool) FollowStatus {
	fw.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		fw.mu.Lock()
		s := fw.last
		fw.mu.Unlock()
		if ok(s) {
			return s
		}
		select {
		case <-fw.seen:
		case err := <-fw.done:
			fw.cancel = nil
			fw.t.Fatalf("follower ended while waiting for %s: %v (status %+v)", what, err, s)
		case <-deadline:
			fw.t.Fatalf("follower never reached %s (status %+v)", what, s)
		}
	}
}

func (fw *follow) waitSeq(gen string, seq uint64) FollowStatus {
	fw.t.Helper()
	return fw.wait("seq "+gen, func(s FollowStatus) bool { return s.Generation == gen && s.Seq == seq })
}

func (fw *follow) stop() (FollowStatus, error) {
	fw.t.Helper()
	fw.cancel()
	fw.cancel = nil
	err := <-fw.done
	return fw.final, err
}

// stash moves objects out of the replica (not uploaded yet); reveal puts
// them back, as tailer's uploads would.
type stash struct {
	t   *testing.T
	rep *replicatest.Replica
	dir string
}

func (s stash) hide(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		dst := filepath.Join(s.dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.Rename(s.rep.Path(k), dst); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s stash) reveal(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		if err := os.Rename(filepath.Join(s.dir, filepath.FromSlash(k)), s.rep.Path(k)); err != nil {
			s.t.Fatal(err)
		}
	}
}

func keysOf(segs []layout.Segment) []string {
	var out []string
	for _, s := range segs {
		out = append(out, s.Key)
	}
	return out
}

// checkStandby opens the stopped standby and checks that it equals the
// source at seq and that the state file derives exactly that position.
func checkStandby(t *testing.T, rep *replicatest.Replica, to string, seq uint64) {
	t.Helper()
	st, err := store.OpenReadOnly(to)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Digests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, got, rep.StateAt(t, seq))
	s, found, err := readState(StatePath(to))
	if err != nil || !found {
		t.Fatalf("state file: found %v, %v", found, err)
	}
	latest := st.DB.GetLatestSequenceNumber()
	if !s.Stopped || s.StoppedSeq != latest {
		t.Fatalf("state after a clean stop: stopped %v at %d, the store is at %d", s.Stopped, s.StoppedSeq, latest)
	}
	if pos := s.SourceSeq + latest - s.LocalSeq; pos != seq {
		t.Fatalf("state derives seq %d (E %d + latest %d - S0 %d), the store equals %d", pos, s.SourceSeq, latest, s.LocalSeq, seq)
	}
	if id, _ := readIdentity(to); id != s.Identity {
		t.Fatalf("state names store %q, the standby is %q", s.Identity, id)
	}
}

// TestFollowAppliesCompactedChainsAndResumes: a standby follows segments
// as they appear, through compaction (a wide segment replacing narrow
// ones, and one overlapping batches already applied), stops and resumes
// from its own sequence number without re-applying or skipping a batch
// (the counter merges would show either), and equals the source at every
// stop.
func TestFollowAppliesCompactedChainsAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("follows a 40-transaction replica through compaction and restarts: skipped under -short")
	}
	rep := replicatest.Build(t, replicatest.Spec{Tx: 40, ExportsAfter: []int{0, 20}, PerSegment: 4})
	segs := rep.Segments // 10 segments of 4 batches
	gen := rep.Generation
	hidden := stash{t, rep, t.TempDir()}
	hidden.hide(keysOf(segs[2:])...)
	hidden.hide(rep.Exports[1].Key)
	to := filepath.Join(t.TempDir(), "standby")

	fw := startFollow(t, rep, to)
	fw.waitSeq(gen, segs[1].Last)
	hidden.reveal(segs[2].Key)
	fw.waitSeq(gen, segs[2].Last)
	st, err := fw.stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.Rebuilds != 1 || st.Batches != 4 {
		t.Fatalf("status %+v: want 1 build and 4 batches applied after it", st)
	}
	checkStandby(t, rep, to, segs[2].Last)

	// Compaction: segments 0..5 merged into one (the narrow 3..5 never
	// seen), then 4..7 merged while 6 and 7 are still narrow too.
	hidden.reveal(keysOf(segs[3:8])...)
	var batches []segment.Batch
	for _, s := range segs[:6] {
		batches = append(batches, rep.BatchesOf(s.Key)...)
	}
	rep.SealSegment(t, segs[0].First, segs[5].Last, batches)
	for _, s := range segs[:6] {
		rep.Delete(t, s.Key)
	}
	batches = nil
	for _, s := range segs[4:8] {
		batches = append(batches, rep.BatchesOf(s.Key)...)
	}
	rep.SealSegment(t, segs[4].First, segs[7].Last, batches)

	fw = startFollow(t, rep, to)
	fw.waitSeq(gen, segs[7].Last)
	hidden.reveal(rep.Exports[1].Key) // a later export does not disturb following
	hidden.reveal(keysOf(segs[8:])...)
	fw.waitSeq(gen, segs[9].Last)
	if st, err = fw.stop(); err != nil {
		t.Fatal(err)
	}
	if st.Rebuilds != 0 || st.Batches != 28 {
		t.Fatalf("status %+v after resuming: want no rebuild and 28 batches applied", st)
	}
	checkStandby(t, rep, to, segs[9].Last)
	for _, p := range []string{pathsFor(to, "").build, pathsFor(to, "").old, pathsFor(to, "").work} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left behind (%v)", p, err)
		}
	}
}

// TestFollowRebasesOnNewGeneration: a new generation (a new primary,
// sequence numbers starting over) makes the standby rebuild from its
// export beside the old one, swap it in, and continue in it. A crash
// between recording the rebuilt store and swapping it in is finished by
// the next start.
func TestFollowRebasesOnNewGeneration(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds a standby from a new generation, twice: skipped under -short")
	}
	for _, crash := range []bool{false, true} {
		name := "live"
		if crash {
			name = "crash before the swap"
		}
		t.Run(name, func(t *testing.T) {
			rep := replicatest.Build(t, replicatest.Spec{Tx: 12})
			to := filepath.Join(t.TempDir(), "standby")
			// The hook is set before the follower starts (no race on it)
			// and fires once armed: at the rebuild, not the first build.
			var armed atomic.Bool
			crashed := make(chan struct{})
			var once sync.Once
			var cancel context.CancelFunc
			if crash {
				afterStateHook = func() error {
					if !armed.Load() {
						return nil
					}
					once.Do(func() { cancel(); close(crashed) })
					return errors.New("simulated crash")
				}
				t.Cleanup(func() { afterStateHook = nil })
			}
			fw := startFollow(t, rep, to)
			cancel = fw.cancel
			fw.waitSeq(rep.Generation, rep.Segments[len(rep.Segments)-1].Last)
			if crash {
				armed.Store(true)
				rep.AddGeneration(t, replicatest.Spec{Tx: 8})
				<-crashed
				fw.stop()
				armed.Store(false)
				if _, err := os.Stat(pathsFor(to, "").build); err != nil {
					t.Fatalf("the crash left no built store: %v", err)
				}
				fw = startFollow(t, rep, to)
			} else {
				rep.AddGeneration(t, replicatest.Spec{Tx: 8})
			}
			last := rep.Segments[len(rep.Segments)-1].Last
			fw.waitSeq(rep.Generation, last)
			st, err := fw.stop()
			if err != nil {
				t.Fatal(err)
			}
			if !crash && st.Rebuilds != 2 {
				t.Fatalf("status %+v: want the first build and one rebuild", st)
			}
			checkStandby(t, rep, to, last)
			for _, p := range []string{pathsFor(to, "").build, pathsFor(to, "").old} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s left behind (%v)", p, err)
				}
			}
		})
	}
}

// TestFollowRefuses: a directory that is not a standby, a standby another
// process has open, one written since the follower stopped (promoted),
// and a second follower of the same standby.
func TestFollowRefuses(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 8})
	ctx := context.Background()
	run := func(to string) error {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := Follow(ctx, FollowOptions{Replica: rep.R, To: to, Interval: 10 * time.Millisecond})
		return err
	}
	expect := func(err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("followed, want a refusal saying %q", parts)
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not say %q", err, p)
			}
		}
	}

	other := filepath.Join(t.TempDir(), "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	expect(run(other), "not empty", "no standby tailer built")

	to := filepath.Join(t.TempDir(), "standby")
	fw := startFollow(t, rep, to)
	fw.waitSeq(rep.Generation, rep.Segments[len(rep.Segments)-1].Last)
	expect(run(to), "already followed by another tailer")
	if _, err := fw.stop(); err != nil {
		t.Fatal(err)
	}

	// Open (in this process: RocksDB refuses the second open the same way).
	names, err := store.ListFamilies(to)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenWritable(to, names, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	expect(run(to), "is open in another process (Stalwart?)")
	// Promoted: something writes to it.
	wo := grocksdb.NewDefaultWriteOptions()
	if err := st.DB.PutCF(wo, st.Handle("p"), []byte("stalwart"), []byte("wrote this")); err != nil {
		t.Fatal(err)
	}
	wo.Destroy()
	st.Close()
	expect(run(to), "was written since the follower stopped", "promoted")
}

// TestFollowRebuildsPastPrunedSegments: the segments after the standby's
// position are gone for good (retention pruned them while the follower
// was stopped) but a later export of the same generation exists: after
// the grace period the standby is rebuilt from it and follows on.
func TestFollowRebuildsPastPrunedSegments(t *testing.T) {
	defer func(g time.Duration) { holeGrace = g }(holeGrace)
	holeGrace = 50 * time.Millisecond
	rep := replicatest.Build(t, replicatest.Spec{Tx: 40, ExportsAfter: []int{0, 20}, PerSegment: 4})
	segs := rep.Segments
	hidden := stash{t, rep, t.TempDir()}
	hidden.hide(keysOf(segs[2:])...)
	hidden.hide(rep.Exports[1].Key)
	to := filepath.Join(t.TempDir(), "standby")
	fw := startFollow(t, rep, to)
	fw.waitSeq(rep.Generation, segs[1].Last)
	if _, err := fw.stop(); err != nil {
		t.Fatal(err)
	}
	hidden.reveal(rep.Exports[1].Key) // at the end of segs[4]
	hidden.reveal(keysOf(segs[5:])...)
	fw = startFollow(t, rep, to)
	fw.waitSeq(rep.Generation, segs[9].Last)
	st, err := fw.stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.Rebuilds != 1 || st.Batches != 0 {
		t.Fatalf("status %+v: want one rebuild (from the export at %d, replaying the rest) and nothing applied before it", st, rep.Exports[1].Seq)
	}
	checkStandby(t, rep, to, segs[9].Last)
}

// TestFollowKilledInsideReplay: a follower process is killed (SIGKILL)
// right after writing its 7th batch of a replay. The restarted follower
// must derive exactly that position from the standby's recovered
// sequence number, and continue to the end without re-applying or
// skipping a batch (the counter merges would show either).
func TestFollowKilledInsideReplay(t *testing.T) {
	if os.Getenv("TAILER_FOLLOW_CHILD") != "" {
		return // in the helper process, only TestFollowChild runs
	}
	rep := replicatest.Build(t, replicatest.Spec{Tx: 40, PerSegment: 20})
	segs := rep.Segments
	hidden := stash{t, rep, t.TempDir()}
	hidden.hide(segs[1].Key)
	to := filepath.Join(t.TempDir(), "standby")

	child := exec.Command(os.Args[0], "-test.run=^TestFollowChild$", "-test.v")
	child.Env = append(os.Environ(), "TAILER_FOLLOW_CHILD=1", "TAILER_FOLLOW_URL="+rep.URL, "TAILER_FOLLOW_TO="+to)
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(StatePath(to)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child never built the standby:\n%s", out.String())
		}
	}
	hidden.reveal(segs[1].Key)
	err := child.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL:\n%s", err, out.String())
	}

	// 20 batches per segment: the 7th of the second segment is batch 27.
	want := rep.Batches[20+7-1].Last
	fw := startFollow(t, rep, to)
	fw.waitSeq(rep.Generation, segs[1].Last)
	if _, err := fw.stop(); err != nil {
		t.Fatal(err)
	}
	if fw.first == nil || fw.first.Seq != want {
		t.Fatalf("resumed at %+v, want seq %d (the 7th batch written before the kill)", fw.first, want)
	}
	checkStandby(t, rep, to, segs[1].Last)
}

// TestFollowChild is the follower process TestFollowKilledInsideReplay
// kills: it follows until its 7th batch written through the WAL, then
// SIGKILLs itself.
func TestFollowChild(t *testing.T) {
	if os.Getenv("TAILER_FOLLOW_CHILD") == "" {
		t.Skip("helper process of TestFollowKilledInsideReplay")
	}
	walBatchHook = func(n int) {
		if n == 7 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	r, err := uploader.Open(context.Background(), os.Getenv("TAILER_FOLLOW_URL"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Follow(context.Background(), FollowOptions{Replica: r, To: os.Getenv("TAILER_FOLLOW_TO"), Interval: 10 * time.Millisecond})
	t.Fatalf("Follow returned: %v", err)
}

// TestFollowRoutesAroundDamage: a damaged wide segment (compaction's
// copy) is left out and its batches applied from the narrow ones beside
// it; a damaged segment with no other copy holds the standby where it is
// (it keeps running) until the object is replaced by a good one.
func TestFollowRoutesAroundDamage(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 24, PerSegment: 4})
	segs := rep.Segments // 6 segments of 4 batches
	hidden := stash{t, rep, t.TempDir()}
	hidden.hide(keysOf(segs[2:])...)
	to := filepath.Join(t.TempDir(), "standby")
	fw := startFollow(t, rep, to)
	fw.waitSeq(rep.Generation, segs[1].Last)

	var batches []segment.Batch
	for _, s := range segs[2:4] {
		batches = append(batches, rep.BatchesOf(s.Key)...)
	}
	wide := rep.SealSegment(t, segs[2].First, segs[3].Last, batches)
	rep.Flip(t, wide, int64(len(rep.Read(t, wide))/2))
	hidden.reveal(segs[2].Key, segs[3].Key)
	fw.waitSeq(rep.Generation, segs[3].Last)

	goodBytes, err := os.ReadFile(filepath.Join(hidden.dir, filepath.FromSlash(segs[4].Key)))
	if err != nil {
		t.Fatal(err)
	}
	hidden.reveal(segs[4].Key, segs[5].Key)
	rep.Flip(t, segs[4].Key, int64(len(goodBytes)/2))
	time.Sleep(300 * time.Millisecond) // some 30 intervals
	fw.mu.Lock()
	at := fw.last.Seq
	fw.mu.Unlock()
	if at != segs[3].Last {
		t.Fatalf("standby at %d with a damaged segment after %d and no other copy", at, segs[3].Last)
	}
	time.Sleep(10 * time.Millisecond) // a different modification time
	rep.Replace(t, segs[4].Key, goodBytes)
	fw.waitSeq(rep.Generation, segs[5].Last)
	st, err := fw.stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.Rebuilds != 1 || st.Batches != 16 {
		t.Fatalf("status %+v: want the first build and 16 batches applied, none twice", st)
	}
	checkStandby(t, rep, to, segs[5].Last)
}
