package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// Options configure a restore.
type Options struct {
	Replica uploader.Replica
	To      string // target directory: must not exist or be empty
	Target  Target
	// Work is where restore makes its own temporary directory for
	// downloads and SST files (default: beside To, hidden, so ingestion
	// can move files instead of copying them). Only that directory is
	// removed at the end; Work itself and anything else in it stay.
	Work string
	// Digests asks for every family's digest of the finished store in
	// Result.Families (one more full read), to compare it with a primary.
	Digests bool
	// VerifyLoad re-reads the loaded store and compares every family's key
	// count and digest with the export's trailer, checking RocksDB's
	// ingestion too. The export's stream itself is always checked against
	// those digests while it loads (the reader verifies every family at
	// its end), so this second full read is opt-in: it was 39 % of a
	// restore's time (docs/benchmarks.md).
	VerifyLoad bool
	// AllowPartial restores up to the last good batch when the chain to
	// the target is broken (a segment is missing, damaged or from a newer
	// format) instead of failing; Result.Partial and Result.Note then say
	// where it stopped and why. Without it such a restore fails before
	// anything is written, naming the object.
	AllowPartial bool
	// Blobs, if set, also restores Stalwart's filesystem blob store into
	// Blobs.Dir once the store is complete: every blob the restored
	// store's family k references (Result.Blobs). A required blob the
	// replica lacks does not fail Run (the store is good; the caller
	// decides from Result.Blobs.Report); a failure to read the replica or
	// write the directory does, and removes both.
	Blobs *BlobOptions
	Log   *slog.Logger
	// Progress, if set, is called as the restore advances, so a command
	// can show bytes, rate and ETA: phase "download" counts bytes fetched
	// against the plan's object sizes, phase "load" keys ingested against
	// the export's record count. Calls are frequent; the callee throttles.
	Progress func(phase string, done, total int64)
}

// Result reports what a restore did.
type Result struct {
	Generation string
	ExportSeq  uint64
	Target     uint64 // the sequence number asked for (or resolved from --time / --change-id)
	Why        string // how a --time or --change-id target was resolved
	Seq        uint64 // the source sequence number the restored store equals
	Note       string // why the restore stopped where it did, when not exactly at the target
	// Partial is set when the restore stopped short of the target because
	// the chain is broken (only with Options.AllowPartial): the store is
	// exactly the source's state at Seq, but not the state asked for.
	Partial    bool
	Segments   int
	Batches    int
	Keys       uint64              // keys loaded from the export
	Downloaded int64               // bytes fetched from the replica
	Families   []segment.FamilySum // with Options.Digests
	// CapturedUnixMs is the restored point's time: the capture time of
	// the last batch replayed, or the base export's time without replay.
	CapturedUnixMs int64
	// Blobs is what the blob restore did (with Options.Blobs).
	Blobs       *BlobResult
	Took        time.Duration
	DownloadDur time.Duration
	LoadDur     time.Duration
	ReplayDur   time.Duration
}

// Run restores the replica into opts.To.
//
// Nothing reaches the target before every object of the plan has been
// downloaded and verified. A damaged base export is routed around (an
// older export of the same generation and more replay give the same
// state; the note says so). A hole or a damaged segment fails the restore,
// naming it, unless opts.AllowPartial. If anything fails once the target
// store exists, the target is removed again, so a failed restore never
// leaves a store behind that could be mistaken for a good one.
func Run(ctx context.Context, opts Options) (res Result, err error) {
	start := time.Now()
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := checkTarget(opts.To); err != nil {
		return Result{}, err
	}
	var blobLayout blobfs.Layout
	if opts.Blobs != nil {
		if blobLayout, err = opts.Blobs.layout(); err != nil {
			return Result{}, err
		}
		if err := checkBlobDir(opts.Blobs.Dir, opts.To); err != nil {
			return Result{}, err
		}
	}
	gens, _, err := catalog.List(ctx, opts.Replica, nil)
	if err != nil {
		return Result{}, err
	}
	parent, pattern := opts.Work, "tailer-restore-"
	if parent == "" {
		parent, pattern = filepath.Dir(filepath.Clean(opts.To)), "."+filepath.Base(opts.To)+".tailer-restore-"
	}
	wd, err := owned.NewTempDir(parent, pattern)
	if err != nil {
		return Result{}, fmt.Errorf("restore work dir: %w", err)
	}
	defer func() {
		if rerr := wd.Remove(); rerr != nil {
			log.Warn("cannot remove the restore's work dir", "err", rerr)
		}
	}()
	work := wd.Path

	t0 := time.Now()
	target, why, have, err := resolveTarget(ctx, opts.Replica, gens, opts.Target, work)
	if err != nil {
		return Result{}, err
	}
	plan, files, notes, err := prepare(ctx, opts, gens, target, work, have, log)
	if err != nil {
		return Result{}, err
	}
	defer files.close()
	res = Result{Generation: plan.Generation.ID, ExportSeq: plan.Export.Seq, Target: plan.Want, Why: why}
	res.Downloaded, res.Segments, res.DownloadDur = files.bytes, len(files.segments), time.Since(t0)

	created, err := claimTarget(opts.To)
	if err != nil {
		return Result{}, err
	}
	var st *store.Store
	blobsClaimed, blobsCreated := false, false
	defer func() {
		if st != nil {
			st.Close()
		}
		if err != nil {
			removeTarget(opts.To, created, log)
			if blobsClaimed {
				removeTarget(opts.Blobs.Dir, blobsCreated, log)
			}
		}
	}()
	if st, err = createTarget(opts.To, files); err != nil {
		return Result{}, err
	}
	t1 := time.Now()
	keys, err := load(ctx, st, files.export, filepath.Join(work, "sst"), log, opts.Progress)
	if err != nil {
		return Result{}, err
	}
	res.Keys, res.LoadDur = keys, time.Since(t1)
	if opts.VerifyLoad {
		if err := verifyLoad(ctx, st, files.export); err != nil {
			return Result{}, err
		}
	}
	t2 := time.Now()
	rep, err := replay(ctx, st, files, plan.Export.Seq, plan.Seq, replayOptions{partial: opts.AllowPartial}, log)
	if err != nil {
		return Result{}, err
	}
	res.Seq, res.Batches, res.ReplayDur = rep.seq, rep.batches, time.Since(t2)
	res.CapturedUnixMs = files.export.Header().Created.UnixMilli()
	if rep.batches > 0 {
		res.CapturedUnixMs = rep.captured
	}
	if rep.note != "" {
		notes = append(notes, rep.note)
	}
	if rep.broken {
		res.Partial = true
	} else if rep.seq < plan.Seq && !rep.inside {
		// Every segment was read to its end and the chain still stops
		// short: the segments hold fewer batches than their names say.
		msg := fmt.Sprintf("the segments end at sequence %d although their names reach %d: the last of them (%s) holds fewer batches than it claims", rep.seq, plan.Seq, lastKey(files))
		if !opts.AllowPartial {
			return Result{}, fmt.Errorf("restore stopped: %s; %w", msg, keepsPartial(rep.seq))
		}
		notes = append(notes, "restored only up to "+fmt.Sprint(rep.seq)+": "+msg)
		res.Partial = true
	}
	if plan.Seq < plan.Want {
		res.Partial = true
	}
	res.Note = strings.Join(notes, "; ")
	if err := finish(st); err != nil {
		return Result{}, err
	}
	if opts.Digests {
		if res.Families, err = st.Digests(ctx, nil); err != nil {
			return Result{}, err
		}
	}
	if opts.Blobs != nil {
		if blobsCreated, err = claimBlobDir(opts.Blobs.Dir); err != nil {
			return Result{}, err
		}
		blobsClaimed = true
		br := blobRestorer{replica: opts.Replica, layout: blobLayout, workers: opts.Blobs.Workers, log: log, progress: opts.Progress}
		b, err := br.all(ctx, st, pointTime(res.CapturedUnixMs))
		if err != nil {
			return Result{}, err
		}
		res.Blobs = &b
		log.Info("blobs restored", "dir", b.Dir, "referenced", b.Referenced, "written", b.Report.Written,
			"missing", len(b.Report.Missing), "optional", b.Report.Optional, "took", b.Took.Round(time.Millisecond))
	}
	st.Close()
	st = nil
	res.Took = time.Since(start)
	return res, nil
}

// prepare plans the restore and downloads and verifies what it needs.
// An object found damaged (or missing, or of a newer format) is left out
// and the same target planned again without it: an older export with more
// replay, or a narrower segment compaction left beside a damaged wide one,
// gives the same state. When no way round is left the chain has a hole at
// the damaged object: that fails the restore, naming it, or with
// AllowPartial shortens it to the last good batch before it. notes say
// every such decision. On success files is open and the caller closes it;
// nothing has been written to the target yet.
func prepare(ctx context.Context, opts Options, gens []layout.Generation, target Target, work string, have map[string]string, log *slog.Logger) (Plan, *fetched, []string, error) {
	plan, err := MakePlan(gens, target)
	if err != nil {
		return Plan{}, nil, nil, err
	}
	if err := checkMeta(ctx, opts.Replica, plan.Generation, log); err != nil {
		return Plan{}, nil, nil, err
	}
	g, want := plan.Generation, plan.Want
	var badExports, badSegments []string // what was left out, described
	for {
		if plan.Short != "" && !opts.AllowPartial {
			msg := fmt.Sprintf("cannot restore to sequence %d: %s", want, plan.Short)
			if len(badSegments) > 0 {
				msg = fmt.Sprintf("restore stopped: %s; without it, %s", strings.Join(badSegments, "; "), plan.Short)
			}
			return Plan{}, nil, nil, fmt.Errorf("%s; nothing was written; %w", msg, &setting.Error{Key: "AllowPartial", Name: "AllowPartial", After: fmt.Sprintf(" restores up to %d, the last batch before it", plan.Seq)})
		}
		log.Info("restore plan", "generation", plan.Generation.ID, "export_seq", plan.Export.Seq,
			"target_seq", plan.Seq, "segments", len(plan.Segments))
		files, err := fetch(ctx, opts.Replica, plan, work, have, log, opts.Progress)
		var d *damage
		if errors.As(err, &d) {
			if files != nil {
				files.close()
			}
			log.Warn("object unusable, planning without it", "key", d.key, "err", d.err)
			if d.export {
				badExports = append(badExports, d.describe())
			} else {
				badSegments = append(badSegments, d.describe())
			}
			g = without(g, d.key)
			delete(have, d.key)
			if plan, err = planIn(g, want, target); err != nil {
				return Plan{}, nil, nil, fmt.Errorf("%s; %w", strings.Join(append(badExports, badSegments...), "; "), err)
			}
			continue
		}
		if err != nil {
			return Plan{}, nil, nil, err
		}
		var notes []string
		if len(badExports) > 0 {
			notes = append(notes, fmt.Sprintf("%s; restored from the older export at %d instead (same state, longer replay)", strings.Join(badExports, "; "), plan.Export.Seq))
		}
		switch {
		case plan.Short != "" && len(badSegments) > 0:
			notes = append(notes, fmt.Sprintf("stopped at %d instead of %d: %s; without it, %s", plan.Seq, want, strings.Join(badSegments, "; "), plan.Short))
		case plan.Short != "":
			notes = append(notes, fmt.Sprintf("stopped at %d instead of %d: %s", plan.Seq, want, plan.Short))
		case len(badSegments) > 0:
			notes = append(notes, fmt.Sprintf("%s; restored through other segments holding the same batches", strings.Join(badSegments, "; ")))
		}
		return plan, files, notes, nil
	}
}

// checkMeta refuses a generation whose generation.json comes from a newer
// format: its objects may mean something this tailer cannot know. Other
// trouble with the file is only logged, since restore does not need it.
func checkMeta(ctx context.Context, r uploader.Replica, g layout.Generation, log *slog.Logger) error {
	if g.MetaKey == "" {
		log.Warn("generation has no generation.json; restoring from its objects alone", "generation", g.ID)
		return nil
	}
	m, err := catalog.ReadMeta(ctx, r, g.MetaKey)
	switch {
	case errors.Is(err, layout.ErrFutureFormat):
		return err
	case err != nil:
		log.Warn("cannot read generation.json; restoring from the objects alone", "key", g.MetaKey, "err", err)
	case m.ID != g.ID:
		log.Warn("generation.json names another generation", "key", g.MetaKey, "id", m.ID)
	}
	return nil
}

// without returns g with the export or segment stored under key left out.
func without(g layout.Generation, key string) layout.Generation {
	g.Exports = slices.DeleteFunc(slices.Clone(g.Exports), func(e layout.Export) bool { return e.Key == key })
	g.Segments = slices.DeleteFunc(slices.Clone(g.Segments), func(s layout.Segment) bool { return s.Key == key })
	return g
}

func lastKey(f *fetched) string {
	if len(f.keys) == 0 {
		return "none"
	}
	return f.keys[len(f.keys)-1]
}

// removeTarget deletes what a failed restore created in dir: the whole
// directory if the restore created it, else its contents (claimTarget saw
// it empty right before the restore wrote there).
func removeTarget(dir string, created bool, log *slog.Logger) {
	if created {
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("cannot remove the failed restore", "dir", dir, "err", err)
		}
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			log.Warn("cannot remove the failed restore", "path", filepath.Join(dir, e.Name()), "err", err)
		}
	}
}

// checkTarget refuses to restore over anything; existed says whether dir
// is there already (empty), so a failed restore removes only what it made.
func checkTarget(dir string) (existed bool, err error) {
	if dir == "" {
		return false, setting.Missing("To", "target directory", "name a new directory to restore into")
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("restore target %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("restore target %s is not empty: restore into a new or empty directory (tailer never overwrites a store)", dir)
	}
	return true, nil
}

// claimTarget makes dir the restore's right before anything is written
// there: it creates it (owned.DirMode: the store holds mail; restore has
// no source directory whose mode it could copy), or checks again that the
// existing directory is still empty, so a failed restore removes only what
// it wrote. An existing directory keeps its mode. created says which.
func claimTarget(dir string) (created bool, err error) {
	err = os.Mkdir(dir, owned.DirMode)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("create restore target %s: %w", dir, err)
	}
	if _, err := checkTarget(dir); err != nil {
		return false, err
	}
	return false, nil
}

// createTarget creates the store with every family the export and the
// segments name, each with Stalwart's options.
func createTarget(dir string, files *fetched) (*store.Store, error) {
	var names []string
	seen := map[string]bool{}
	add := func(fams []segment.Family) {
		for _, f := range fams {
			if !seen[f.Name] {
				seen[f.Name] = true
				names = append(names, f.Name)
			}
		}
	}
	add(files.export.Header().Families)
	for _, s := range files.segments {
		add(s.Header().Families)
	}
	st, err := store.OpenWritable(dir, names, true, nil)
	if err != nil {
		return nil, fmt.Errorf("create restore target: %w", err)
	}
	return st, nil
}

// resolveTarget turns a time or change-id target into a generation and a
// sequence number; have lists segments already downloaded doing so.
func resolveTarget(ctx context.Context, r uploader.Replica, gens []layout.Generation, t Target, work string) (Target, string, map[string]string, error) {
	n := 0
	for _, set := range []bool{t.HasSeq, t.HasTime, t.HasChange} {
		if set {
			n++
		}
	}
	if n > 1 {
		return t, "", nil, fmt.Errorf("give one of %w, %w or %w, not several", &setting.Error{Key: "Seq", Name: "a sequence number"}, &setting.Error{Key: "Time", Name: "a time"}, &setting.Error{Key: "Change", Name: "an account's change id"})
	}
	if !t.HasTime && !t.HasChange {
		return t, "", nil, nil
	}
	// A moment that has not come yet is outside every replica; the newest
	// state is what the operator wants then, and says so by giving no time.
	// A minute of slack covers clocks that disagree a little.
	if now := time.Now(); t.HasTime && t.Time.After(now.Add(time.Minute)) {
		return t, "", nil, fmt.Errorf("%w, or %w", setting.Bad("Time", "time", t.Time.UTC().Format(time.RFC3339), fmt.Sprintf("is in the future (now is %s): give a past time", now.UTC().Format(time.RFC3339))), &setting.Error{Key: "Time", Name: "time", Before: "no ", After: " for the newest state"})
	}
	if t.Generation != "" {
		var only []layout.Generation
		for _, g := range gens {
			if g.ID == t.Generation {
				only = append(only, g)
			}
		}
		gens = only
	}
	rv := &resolver{ctx: ctx, r: r, work: work, got: map[string]string{}}
	var res resolved
	var err error
	if t.HasTime {
		res, err = rv.byTime(gens, t.Time)
	} else {
		res, err = rv.byChange(gens, t.Account, t.ChangeID)
	}
	if err != nil {
		return t, "", nil, err
	}
	return Target{Seq: res.seq, HasSeq: true, Generation: res.generation}, res.why, rv.got, nil
}

// keepsPartial is the advice of a restore stopped at a broken chain: a
// partial restore keeps the state at seq.
func keepsPartial(seq uint64) *setting.Error {
	return &setting.Error{Key: "AllowPartial", Name: "AllowPartial", After: fmt.Sprintf(" keeps the state at %d", seq)}
}
