// Package standby keeps a warm standby: a restored store kept up to date
// by applying the segments that appear in the replica, through the store's
// own WAL, and rebuilt beside itself (then swapped in) when tailer starts a
// new generation. It is `tailer restore --follow`. The one-shot pieces
// (restoring a point, fetching and verifying segments, replaying them,
// writing blobs) are package restore's; standby adds the position, its
// state file beside the store, the listings and the rebuilds.
package standby

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/internal/durable"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/uploader"
)

// FollowOptions configure a warm standby (Follow).
type FollowOptions struct {
	Replica uploader.Replica
	// To is the standby store's directory. On a first start it must not
	// exist or be empty; afterwards it is the store Follow keeps current.
	To string
	// Interval is how often the replica is listed for new segments
	// (default 1s).
	Interval time.Duration
	// Work is where the follower makes its own temporary directories for
	// downloads (default: a hidden directory beside To, so a rebuild's
	// ingestion moves files instead of copying them). Only those are
	// removed; Work itself and anything else in it stay.
	Work string
	Log  *slog.Logger
	// Progress, if set, is called after every step that moved the
	// standby (batches applied, or a rebuild from an export).
	Progress func(FollowStatus)
	// Registry, if set, receives the follower's metrics
	// (tailer_follow_*).
	Registry prometheus.Registerer
	// Blobs, if set, keeps Stalwart's filesystem blob store for the
	// standby in Blobs.Dir (see followBlobs): new or empty the first
	// time, the standby's blob directory afterwards.
	Blobs *restore.BlobOptions
}

// FollowStatus is where a follower stands.
type FollowStatus struct {
	Generation string
	// Seq is the source sequence number the standby equals: the primary's
	// state when its latest sequence number was Seq.
	Seq uint64
	// CapturedUnixMs is the capture time of the last batch applied (0
	// until one is): now minus it is how far behind the standby is while
	// the primary is being written.
	CapturedUnixMs int64
	Batches        int // batches applied since Follow started
	Rebuilds       int // stores built from an export since Follow started (the first one included)
	// BlobsWritten counts blob files written since Follow started;
	// BlobsMissing is the number of blobs the standby references that the
	// replica does not hold (with FollowOptions.Blobs).
	BlobsWritten int
	BlobsMissing int
}

// holeGrace is how long a chain that stops short (the segment after the
// standby's position missing, while later objects exist) is waited for
// before the standby is rebuilt from a later export of the same
// generation. tailer uploads in order, so a segment in flight shows up
// within seconds; one missing for this long was pruned or lost, and
// rebuilding is the only way forward.
var holeGrace = time.Minute

// chunk is how many segments are downloaded before they are applied: a
// standby that fell far behind catches up in steps instead of first
// downloading everything.
const chunk = 32

// Follow keeps a standby store in opts.To current with the replica: it
// restores the newest state once (restore.Run, into a sibling directory swapped
// in with renames), then every Interval applies the segments that
// appeared since, whole batches only, through the store's WAL. On a new
// generation it says so and rebuilds the store from that generation's
// export, again beside the standby and swapped in, so To is never a
// half-built store. Follow returns when ctx is cancelled, with the store
// flushed, closed and at a batch boundary; the operator then promotes it
// by pointing Stalwart at To.
//
// Progress lives beside the store, never in it (Stalwart opens a fixed
// list of column families, and extra keys would change the store's
// digests): <To>.tailer-follow.json records the generation, the source
// sequence number E the load stands at, and the standby's own latest
// sequence number S0 right after it. Each replayed source batch
// [s, s+c-1] advances the standby's sequence by exactly c, and RocksDB
// recovers a prefix of whole WAL records after any crash, so the source
// position is always E + (latest - S0): a restart (after kill -9 too)
// neither re-applies a batch (merges are not idempotent) nor skips one.
// Follow checks that identity after every step and stops if it breaks.
//
// A standby another process has open (RocksDB's LOCK; Stalwart after a
// promotion) is refused, as is one written since the follower stopped.
func Follow(ctx context.Context, opts FollowOptions) (FollowStatus, error) {
	if opts.To == "" {
		return FollowStatus{}, setting.Missing("To", "standby directory", "name the standby directory to follow into")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(opts.To)
	if err != nil {
		return FollowStatus{}, fmt.Errorf("standby directory %s: %w", opts.To, err)
	}
	f := &follower{opts: opts, p: pathsFor(dir, opts.Work), log: log, bad: map[string]layout.Object{}, m: newFollowMetrics(opts.Registry)}
	if opts.Blobs != nil {
		if f.blobs, err = newFollowBlobs(*opts.Blobs, dir, opts.Replica, log); err != nil {
			return FollowStatus{}, err
		}
	}
	unlock, err := lockFollower(f.p)
	if err != nil {
		return FollowStatus{}, err
	}
	defer unlock()
	if opts.Work == "" {
		// The default work dir is tailer's own (a crash may have left it
		// behind); a --work given is the operator's and stays.
		defer os.Remove(f.p.work) // only if empty
	}
	if err := f.start(ctx); err != nil {
		f.abandon()
		if ctx.Err() != nil && f.st == nil {
			return f.status, fmt.Errorf("stopped before the first restore finished (nothing to promote yet): %w", err)
		}
		return f.status, err
	}
	err = f.loop(ctx)
	if serr := f.stop(); err == nil {
		err = serr
	}
	return f.status, err
}

// followPaths are the follower's files, all beside the standby directory
// (same filesystem, so a rebuilt store is swapped in with a rename).
type followPaths struct {
	dir   string // the standby store
	state string // <dir>.tailer-follow.json
	build string // a store being built from an export
	old   string // the previous store while a rebuilt one is swapped in
	work  string // downloads
	lock  string // one follower per standby
}

func pathsFor(dir, work string) followPaths {
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	hidden := func(suffix string) string { return filepath.Join(parent, "."+base+suffix) }
	if work == "" {
		work = hidden(".tailer-follow-work")
	}
	return followPaths{dir: dir, state: dir + ".tailer-follow.json", build: hidden(".tailer-build"),
		old: hidden(".tailer-old"), work: work, lock: hidden(".tailer-follow.lock")}
}

// StatePath is the sidecar file recording a standby's progress.
func StatePath(dir string) string { return filepath.Clean(dir) + ".tailer-follow.json" }

type follower struct {
	opts   FollowOptions
	p      followPaths
	log    *slog.Logger
	st     *store.Store
	state  followState
	pos    uint64                   // the source sequence number the store equals
	bad    map[string]layout.Object // damaged objects, left out while the replica lists them unchanged
	status FollowStatus
	m      *followMetrics
	shown  FollowStatus // the status the metrics last saw

	known    *layout.Generation // the standby's generation as the last full listing saw it (nil: list in full next)
	lastFull time.Time          // when that listing was made

	holeSince time.Time // when the chain was first seen stopping short of the generation's newest batch
	holeSaid  uint64    // the position whose hole was reported
	lastErr   string    // the last transient error reported, so a long outage logs once
	lastInfo  time.Time // the last periodic progress line
	infoFrom  int       // Batches at that line

	blobs *followBlobs // nil without FollowOptions.Blobs
}

// fatalError is a failure retrying cannot fix: the standby itself cannot
// be written, or its position no longer matches its content. Follow
// stops on it rather than risk a wrong store.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// errGone says the standby directory is missing or empty although a state
// file exists: the operator removed it, so the follower starts over.
var errGone = errors.New("standby directory is gone")

// start opens the standby, finishing a swap a crash interrupted, or
// builds it from the replica on a first start.
func (f *follower) start(ctx context.Context) error {
	if err := checkNotOpen(f.p.dir); err != nil {
		return err
	}
	state, found, err := readState(f.p.state)
	if err != nil {
		return err
	}
	ownBlobs := false // the blob directory is this standby's already
	if found {
		f.state = state
		ownBlobs = state.BlobsDir != "" && state.BlobsDir == f.blobs.dirName()
		if err := f.blobs.resume(&f.state); err != nil {
			return err
		}
		err := f.finishSwap()
		if err == nil {
			return f.openStore(false)
		}
		if !errors.Is(err, errGone) {
			return err
		}
		f.log.Warn("the standby directory is gone or empty: restoring it afresh", "dir", f.p.dir, "state", f.p.state)
		if err := os.Remove(f.p.state); err != nil {
			return fmt.Errorf("remove stale %s: %w", f.p.state, err)
		}
		f.state = followState{}
	}
	if err := removeAll(f.p.build, f.p.old); err != nil {
		return err
	}
	if err := restore.CheckTarget(f.p.dir); err != nil {
		return fmt.Errorf("%w; it has no %s, so it is no standby tailer built: follow into a new or empty directory", err, filepath.Base(f.p.state))
	}
	if !ownBlobs {
		if err := f.blobs.claim(); err != nil {
			return err
		}
	}
	return f.rebuild(ctx, "", "first restore")
}

// finishSwap makes the standby directory hold the store the state file
// describes (matched by RocksDB's IDENTITY): a crash between writing the
// state of a rebuilt store and renaming it into place left it beside.
func (f *follower) finishSwap() error {
	idDir, err := readIdentity(f.p.dir)
	if err != nil {
		return err
	}
	if idDir != "" && idDir == f.state.Identity {
		return removeAll(f.p.build, f.p.old)
	}
	idBuild, err := readIdentity(f.p.build)
	if err != nil {
		return err
	}
	if idBuild != "" && idBuild == f.state.Identity {
		f.log.Warn("completing the swap of a rebuilt standby that a crash interrupted", "dir", f.p.dir, "generation", f.state.Generation)
		if err := f.swapIn(); err != nil {
			return err
		}
		return removeAll(f.p.old)
	}
	if empty, err := isEmptyDir(f.p.dir); err != nil {
		return err
	} else if empty {
		return errGone
	}
	return fmt.Errorf("%s holds the store %q, but %s records %q: the directory was replaced since tailer followed into it; follow into a new directory, or remove %s to build the standby afresh",
		f.p.dir, idDir, f.p.state, f.state.Identity, f.p.state)
}

// rebuild restores the newest state of generation gen ("" for the newest
// generation) into the build directory, records it, and swaps it in for
// the standby; the current standby stays open and valid until then.
func (f *follower) rebuild(ctx context.Context, gen, why string) error {
	if err := removeAll(f.p.build); err != nil {
		return err
	}
	res, err := restore.Run(ctx, restore.Options{Replica: f.opts.Replica, To: f.p.build, Target: restore.Target{Generation: gen},
		Work: f.p.work, AllowPartial: true, Log: f.log})
	if err != nil {
		return fmt.Errorf("build the standby (%s) from %s: %w", why, f.opts.Replica, err)
	}
	if res.Partial {
		f.log.Warn("the standby starts short of the generation's newest batch; it continues when the chain does", "seq", res.Seq, "why", res.Note)
	}
	ro, err := store.OpenReadOnly(f.p.build)
	if err != nil {
		return &fatalError{fmt.Errorf("reopen the built standby: %w", err)}
	}
	s0 := ro.DB.GetLatestSequenceNumber()
	ro.Close()
	id, err := readIdentity(f.p.build)
	if err != nil {
		return err
	}
	if id == "" {
		return &fatalError{fmt.Errorf("the built standby %s has no IDENTITY file: cannot tell it from another store", f.p.build)}
	}
	if f.st != nil {
		f.st.Close() // consistent at a batch boundary; replaced below
		f.st = nil
	}
	f.state = followState{Replica: f.opts.Replica.String(), Generation: res.Generation, Identity: id, SourceSeq: res.Seq, LocalSeq: s0,
		BlobsDir: f.blobs.dirName(), BlobsDepth: f.blobs.depth()}
	f.blobs.rebuilt(res.CapturedUnixMs)
	if err := writeState(f.p.state, f.state); err != nil {
		return &fatalError{err}
	}
	if afterStateHook != nil {
		if err := afterStateHook(); err != nil {
			return err
		}
	}
	if err := f.swapIn(); err != nil {
		return &fatalError{err}
	}
	if err := removeAll(f.p.old); err != nil {
		f.log.Warn("cannot remove the replaced standby", "dir", f.p.old, "err", err)
	}
	f.status.Rebuilds++
	f.known = nil // a new base: list in full
	f.log.Info("standby built", "dir", f.p.dir, "generation", res.Generation, "seq", res.Seq, "export_seq", res.ExportSeq,
		"batches", res.Batches, "took", res.Took.Round(time.Millisecond))
	if err := f.openStore(true); err != nil {
		return &fatalError{err}
	}
	return nil
}

// afterStateHook, when set by a test, runs between recording a rebuilt
// store and swapping it in: an error there is a crash at that moment.
var afterStateHook func() error

// walBatchHook, when a test sets it, runs after each batch a follower
// wrote (n batches so far in this step's replay): a test kills its own
// process there to prove a standby recovers exactly the batches written.
var walBatchHook func(n int)

// swapIn renames the built store into place: the standby (if any) aside,
// the built one in, the parent directory synced.
func (f *follower) swapIn() error {
	if _, err := os.Stat(f.p.dir); err == nil {
		if err := removeAll(f.p.old); err != nil {
			return err
		}
		if err := os.Rename(f.p.dir, f.p.old); err != nil {
			return fmt.Errorf("move the old standby aside: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("standby directory: %w", err)
	}
	if err := os.Rename(f.p.build, f.p.dir); err != nil {
		return fmt.Errorf("move the built standby into %s (it must be on the same filesystem as its parent, not a mount point): %w", f.p.dir, err)
	}
	return durable.SyncDir(filepath.Dir(f.p.dir))
}

// openStore opens the standby and derives its source position from its
// sequence number. fresh says it was just built: nothing was applied, so
// a latest sequence number other than the recorded one (which the load
// should never cause) is recorded anew instead of trusted.
func (f *follower) openStore(fresh bool) error {
	names, err := store.ListFamilies(f.p.dir)
	if err != nil {
		return err
	}
	st, err := store.OpenWritable(f.p.dir, names, false, nil)
	if err != nil {
		if isLockError(err) {
			return fmt.Errorf("%s is open in another process (Stalwart?): a standby can only be followed while nothing else has it open (%w)", f.p.dir, err)
		}
		return err
	}
	latest := st.DB.GetLatestSequenceNumber()
	switch {
	case fresh && latest != f.state.LocalSeq:
		f.log.Warn("the built standby's sequence number moved after it was recorded; recording it again", "recorded", f.state.LocalSeq, "latest", latest)
		f.state.LocalSeq = latest
	case latest < f.state.LocalSeq:
		st.Close()
		return fmt.Errorf("%s is at local sequence %d, below the %d recorded when it was built: it is not the store %s describes; remove both to build the standby afresh", f.p.dir, latest, f.state.LocalSeq, f.p.state)
	case f.state.Stopped && latest != f.state.StoppedSeq:
		st.Close()
		return fmt.Errorf("%s was written since the follower stopped (local sequence %d, was %d): was it promoted and opened by Stalwart? Following it again would mix two histories; follow into a new directory", f.p.dir, latest, f.state.StoppedSeq)
	}
	f.st = st
	f.pos = f.state.SourceSeq + (latest - f.state.LocalSeq)
	f.state.Stopped, f.state.StoppedSeq = false, 0
	f.state.BlobsSynced = false // from now on the blob directory may lag until the next clean stop
	if err := writeState(f.p.state, f.state); err != nil {
		return &fatalError{err}
	}
	f.status.Generation, f.status.Seq = f.state.Generation, f.pos
	if !fresh {
		f.log.Info("resuming the standby", "dir", f.p.dir, "generation", f.state.Generation, "seq", f.pos,
			"load_seq", f.state.SourceSeq, "local_seq", latest, "local_seq_at_load", f.state.LocalSeq)
	}
	f.progress()
	return nil
}

// loop steps every Interval until ctx is done. Replica trouble is
// reported once per change and retried; a fatalError ends it.
func (f *follower) loop(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := f.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var fe *fatalError
		switch {
		case errors.As(err, &fe):
			return err
		case err != nil:
			f.m.stepErrors.Inc()
			if msg := err.Error(); msg != f.lastErr {
				f.log.Warn("cannot follow the replica for now; retrying every interval", "err", err, "seq", f.pos)
				f.lastErr = msg
			}
		case f.lastErr != "":
			f.log.Info("following again", "seq", f.pos)
			f.lastErr = ""
		}
		if err == nil {
			f.m.lastStep.SetToCurrentTime()
		}
		if f.st == nil {
			return errors.New("the standby is closed after a failed rebuild") // cannot happen: rebuild closes it only to swap
		}
		t.Reset(f.opts.Interval)
	}
}

// step lists the replica and brings the standby as far as its
// generation's chain goes, or rebuilds it from a newer generation. The
// listing is narrow when it can be (see listNew); when that view cannot
// continue the chain, the step is redone on a full listing.
func (f *follower) step(ctx context.Context) error {
	err := f.stepStore(ctx)
	if f.blobs != nil && f.st != nil && ctx.Err() == nil {
		before := f.status
		berr := f.blobs.sync(ctx, f.st, &f.status)
		if f.status != before {
			f.progress()
		}
		if err == nil {
			err = berr
		}
	}
	return err
}

// stepStore is step's part on the store.
func (f *follower) stepStore(ctx context.Context) error {
	full := f.known == nil || time.Since(f.lastFull) >= fullListEvery
	for {
		var gens []layout.Generation
		var err error
		if full {
			gens, err = f.listAll(ctx)
		} else {
			gens, err = f.listNew(ctx)
		}
		if err != nil {
			return err
		}
		err = f.stepOn(ctx, gens, full)
		if errors.Is(err, errNarrow) && !full {
			full = true
			continue
		}
		return err
	}
}

// stepOn moves the standby on what a listing found.
func (f *follower) stepOn(ctx context.Context, gens []layout.Generation, full bool) error {
	var cur, newest *layout.Generation
	for i := range gens {
		g := f.usable(gens[i])
		gens[i] = g
		if g.ID == f.state.Generation {
			cur = &gens[i]
		}
		if len(g.Exports) > 0 {
			newest = &gens[i]
		}
	}
	if newest == nil {
		return fmt.Errorf("the replica holds no generation with an export any more")
	}
	if cur == nil || newest.ID != cur.ID {
		why := "the follower's generation is gone from the replica"
		if cur != nil {
			why = "tailer started a new generation (a WAL gap, a replaced or restored primary)"
		}
		f.log.Warn("NEW GENERATION: re-basing the standby from its export; the store is rebuilt beside the standby and swapped in",
			"from", f.state.Generation, "to", newest.ID, "why", why, "seq", f.pos)
		return f.rebuild(ctx, newest.ID, "new generation "+newest.ID)
	}
	g := *cur
	reach := g.Reach(f.pos)
	if reach == f.pos {
		if !full && g.LastSeq() > f.pos {
			return errNarrow // the next segment may be a wider one that begins earlier
		}
		return f.stuck(ctx, g)
	}
	f.holeSince = time.Time{}
	chain, err := g.Chain(f.pos, reach)
	if err != nil {
		return err // cannot happen: reach is reachable
	}
	for len(chain) > 0 {
		n := min(len(chain), chunk)
		if err := f.apply(ctx, g, chain[:n], reach); err != nil {
			return err
		}
		chain = chain[n:]
	}
	if g.LastSeq() > f.pos {
		if !full {
			return errNarrow
		}
		return f.stuck(ctx, g)
	}
	return nil
}

// usable returns g without the objects found damaged (while the replica
// lists them unchanged: a re-uploaded object is tried again).
func (f *follower) usable(g layout.Generation) layout.Generation {
	for key, o := range f.bad {
		for _, s := range g.Segments {
			if s.Key == key && (s.Size != o.Size || !s.Modified.Equal(o.Modified)) {
				delete(f.bad, key)
			}
		}
	}
	for key := range f.bad {
		g = without(g, key)
	}
	return g
}

// without returns g with the segment (or export) stored under key left
// out (the same as restore's, which keeps its copy unexported).
func without(g layout.Generation, key string) layout.Generation {
	g.Exports = slices.DeleteFunc(slices.Clone(g.Exports), func(e layout.Export) bool { return e.Key == key })
	g.Segments = slices.DeleteFunc(slices.Clone(g.Segments), func(s layout.Segment) bool { return s.Key == key })
	return g
}

// stuck handles a chain that stops at the standby's position while the
// generation holds later batches: a segment in flight (wait), or one
// pruned or lost for good (after holeGrace, rebuild from a later export of
// the same generation if there is one).
func (f *follower) stuck(ctx context.Context, g layout.Generation) error {
	if g.LastSeq() <= f.pos {
		return nil // nothing new
	}
	if f.holeSince.IsZero() {
		f.holeSince = time.Now()
	}
	waited := time.Since(f.holeSince)
	var later *layout.Export
	for i := range g.Exports {
		if g.Exports[i].Seq > f.pos {
			later = &g.Exports[i]
		}
	}
	if later != nil && waited >= holeGrace {
		f.log.Warn("no segment holds the batch after the standby's position (pruned or lost): rebuilding from a later export of the same generation",
			"generation", g.ID, "seq", f.pos, "export_seq", later.Seq, "waited", waited.Round(time.Second))
		f.holeSince = time.Time{}
		return f.rebuild(ctx, g.ID, fmt.Sprintf("the chain after %d is missing", f.pos))
	}
	if waited >= holeGrace && f.holeSaid != f.pos {
		f.holeSaid = f.pos
		f.log.Warn("no segment holds the batch after the standby's position; waiting for it", "generation", g.ID, "seq", f.pos,
			"newest_in_replica", g.LastSeq(), "waited", waited.Round(time.Second))
	}
	return nil
}

// apply downloads segs, verifies them and replays their batches after the
// standby's position, through its WAL, then checks the sequence identity.
func (f *follower) apply(ctx context.Context, g layout.Generation, segs []layout.Segment, reach uint64) error {
	wd, err := owned.NewTempDir(f.p.work, "segments-")
	if err != nil {
		return &fatalError{fmt.Errorf("follow work dir: %w", err)}
	}
	defer func() {
		if err := wd.Remove(); err != nil {
			f.log.Warn("cannot remove the follower's work dir", "err", err)
		}
	}()
	work := wd.Path
	files, ferr := restore.FetchSegments(ctx, f.opts.Replica, g.ID, segs, work, f.log)
	defer files.Close()
	if key, why, damaged := restore.Damaged(ferr); damaged {
		f.log.Error("damaged segment left out; following through other copies of its batches, if any", "key", key, "err", why)
		for _, s := range segs {
			if s.Key == key {
				f.bad[key] = s.Object
			}
		}
	} else if ferr != nil {
		return ferr
	}
	if files.Len() == 0 {
		return ferr
	}
	ao := restore.ApplyOptions{AfterBatch: walBatchHook}
	if f.blobs != nil {
		ao.Commits = f.blobs.committed
	}
	rep, err := restore.Apply(ctx, f.st, files, f.pos, reach, ao, f.log)
	if rep.Batches > 0 && f.blobs != nil {
		f.blobs.applied(rep.CapturedUnixMs)
	}
	if rep.Batches > 0 {
		f.pos = rep.Seq
		f.status.Seq, f.status.Batches, f.status.CapturedUnixMs = f.pos, f.status.Batches+rep.Batches, rep.CapturedUnixMs
		if cerr := f.checkSeq(); cerr != nil {
			return cerr
		}
		f.log.Debug("applied", "generation", g.ID, "seq", f.pos, "batches", rep.Batches, "segments", files.Len())
		f.progress()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return &fatalError{fmt.Errorf("apply to the standby at seq %d: %w", f.pos, err)}
	}
	return ferr
}

// checkSeq proves the identity the position rests on: the standby's
// latest sequence number is S0 plus the source batches applied since E.
func (f *follower) checkSeq() error {
	latest := f.st.DB.GetLatestSequenceNumber()
	if want := f.state.LocalSeq + (f.pos - f.state.SourceSeq); latest != want {
		return &fatalError{fmt.Errorf("the standby's sequence number is %d, expected %d (source seq %d): its position can no longer be derived; stopping (report this as a bug)", latest, want, f.pos)}
	}
	return nil
}

// progress reports the position to the caller and, once a minute, to the
// log.
func (f *follower) progress() {
	f.m.observe(f.shown, f.status)
	f.shown = f.status
	if f.opts.Progress != nil {
		f.opts.Progress(f.status)
	}
	if time.Since(f.lastInfo) < time.Minute {
		return
	}
	args := []any{"generation", f.status.Generation, "seq", f.status.Seq, "batches", f.status.Batches - f.infoFrom}
	if f.status.CapturedUnixMs > 0 {
		args = append(args, "behind", time.Since(time.UnixMilli(f.status.CapturedUnixMs)).Round(10*time.Millisecond).String())
	}
	f.log.Info("following", args...)
	f.lastInfo, f.infoFrom = time.Now(), f.status.Batches
}

// stop flushes and closes the standby and records where it stopped, so a
// later start can tell whether something else wrote to it meanwhile.
func (f *follower) stop() error {
	if f.st == nil {
		return nil
	}
	defer f.abandon()
	if err := restore.Flush(f.st); err != nil {
		return err
	}
	f.state.Stopped, f.state.StoppedSeq = true, f.st.DB.GetLatestSequenceNumber()
	f.state.BlobsSynced = f.blobs.synced()
	if err := writeState(f.p.state, f.state); err != nil {
		return err
	}
	f.log.Info("standby stopped at a batch boundary; promote it by pointing Stalwart at it", "dir", f.p.dir,
		"generation", f.state.Generation, "seq", f.pos)
	return nil
}

// abandon closes the store without recording anything (a failed start).
func (f *follower) abandon() {
	if f.st != nil {
		f.st.Close()
		f.st = nil
	}
}

// removeAll removes the follower's build and old directories. Their names
// are tailer's (hidden, beside the standby), and what tailer leaves there
// is a RocksDB store (it holds a LOCK file from its first open on) or an
// empty directory; anything else is refused, not removed: it is not
// tailer's.
func removeAll(paths ...string) error {
	for _, p := range paths {
		entries, err := os.ReadDir(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		if _, err := os.Lstat(filepath.Join(p, "LOCK")); len(entries) > 0 && err != nil {
			return fmt.Errorf("%s is in the follower's way but holds no store tailer built (no LOCK file): move it away", p)
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

// readIdentity returns the RocksDB IDENTITY of the store in dir, "" when
// dir or the file does not exist.
func readIdentity(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "IDENTITY"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the store identity: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func isEmptyDir(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("standby directory: %w", err)
	}
	return len(entries) == 0, nil
}

// isLockError recognises RocksDB's refusal to open a store whose LOCK
// another process ("While lock file: DIR/LOCK: Resource temporarily
// unavailable") or this one ("lock hold by current process") holds.
func isLockError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "lock hold by current process") ||
		strings.Contains(msg, "While lock file") && strings.Contains(msg, "unavailable")
}
