// Package retention deletes the exports, segments and generations of a
// replica that no retained point in time needs any more (`tailer prune`,
// and the run loop between polls).
//
// A point (a sequence number, or a moment of tailer's capture clock) is
// restorable from the newest export at or before it plus the segments
// after that export. Retention therefore keeps a suffix of all exports, in
// generation then sequence order, and from the oldest kept export on
// everything: the exports after it in its generation, every segment that
// holds a batch after it, and every newer generation whole. Everything
// older goes: earlier exports and the segments wholly at or before the
// oldest kept export in its generation, and older generations whole.
//
// The oldest kept export is the oldest of:
//   - the newest export of all (the newest restorable chain is never cut);
//   - with Policy.KeepExports = N, the N-th newest export;
//   - with Policy.MaxAge, the newest export taken at or before now-MaxAge,
//     which is the base `restore --time` picks for that moment (or the
//     oldest export when none is that old), so every moment of the window
//     stays restorable.
//
// Only exports that verify count in these rules (header, trailer, every
// body checksum and family digest; see catalog.VerifyExport): a damaged
// export is one restore skips for the export before it, so retention must
// not have deleted that one. A damaged export itself is left in place,
// logged at error level and listed in Report.Unverified. Verifying reads
// an export whole, so Apply verifies lazily, newest first, only the
// exports a rule has to look at (with no damage: the newest export and
// each rule's base), and a VerifyCache in the Policy remembers the
// outcome between rounds. When the replica holds exports but none
// verifies, nothing is deleted and Apply returns ErrNothingVerifies.
// For a filesystem blob store, an export's blob manifest is deleted with
// its export, and a blob object only when no kept export's manifest lists
// it, no kept segment's batches commit it, and it is older than
// Policy.BlobGrace (reading the kept segments costs a download each, done
// only when some blob is otherwise unreferenced). A kept export without a
// readable manifest keeps every blob. Beside a running shipper, blob
// objects are deleted only through its BlobGuard (Policy.Blobs), or not at
// all (Policy.SkipBlobs): the bucket alone does not show what its spool
// references, nor can the shipper otherwise learn that a blob it counts as
// held is gone.
//
// Retention is idempotent and safe to run while `tailer run` ships (it
// never touches anything after the newest export it listed, and objects
// listed later are not considered) and while a restore of a retained point
// reads the bucket (nothing such a restore needs is deleted). A restore of
// a point outside the window may fail mid-way.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/uploader"
)

// Policy says what to keep. At least one of MaxAge and KeepExports must be
// set; with both, a point is kept if either rule keeps it.
type Policy struct {
	// MaxAge keeps every moment of the last MaxAge restorable (`--retention 7d`).
	MaxAge time.Duration
	// KeepExports keeps the N newest exports, across generations, each
	// with the segments after it (`--retain-exports N`).
	KeepExports int
	// DryRun plans and reports, deletes nothing.
	DryRun bool
	// Cache, when set, remembers which exports verified so that an
	// export is read in full once, not at every Apply (the run loop
	// applies retention every few minutes). nil verifies afresh.
	Cache *VerifyCache
	// BlobGrace is the age below which a blob object is never deleted
	// (DefaultBlobGrace if 0): it may belong to a segment not uploaded yet.
	BlobGrace time.Duration
	// SkipBlobs leaves every blob object alone (blob manifests still go
	// with their exports): for a caller that does not hold the replica's
	// lease while a tailer that does ships blobs, which only that tailer
	// may delete safely (see BlobGuard).
	SkipBlobs bool
	// Blobs, when set, is the shipper of the replica's blobs, consulted
	// for every blob deletion (see BlobGuard). nil: the bucket alone
	// decides, which is safe only while no tailer ships to the replica.
	Blobs BlobGuard
}

// ErrNothingVerifies is returned (with a report that deletes nothing)
// when the replica holds exports but not one of them verifies: no chain
// is known to be restorable, so none can be proven unneeded, and the
// replica needs attention.
var ErrNothingVerifies = errors.New("retention: no export in the replica verifies; nothing was deleted (run `tailer verify` on it, and take a new export)")

// Validate rejects a policy that would keep nothing or is negative.
func (p Policy) Validate() error {
	switch {
	case p.MaxAge < 0:
		return fmt.Errorf("retention %v is negative", p.MaxAge)
	case p.KeepExports < 0:
		return fmt.Errorf("retain-exports %d is negative", p.KeepExports)
	case p.MaxAge == 0 && p.KeepExports == 0:
		return fmt.Errorf("no retention rule: give %w and/or %w", &setting.Error{Key: "MaxAge", Name: "a maximum age (Policy.MaxAge)"}, &setting.Error{Key: "KeepExports", Name: "a number of exports to keep (Policy.KeepExports)"})
	}
	return nil
}

// Kind says what a deleted object was.
type Kind string

// Kinds of objects.
const (
	KindExport     Kind = "export"
	KindSegment    Kind = "segment"
	KindGeneration Kind = "generation.json"
	KindManifest   Kind = "blob manifest"
	KindBlob       Kind = "blob"
)

// Deletion is one object retention deleted (or, in a dry run, would).
type Deletion struct {
	Key        string
	Size       int64
	Kind       Kind
	Generation string
	Reason     string
}

// Point identifies the oldest restorable point retention kept.
type Point struct {
	Generation string
	ExportSeq  uint64
	ExportTime time.Time // when the export was taken (its header's time)
	Why        string    // which rule chose it
}

// Report says what Apply did.
type Report struct {
	DryRun bool
	// Deleted lists the objects deleted, in the order they were (in a dry
	// run: would be) deleted.
	Deleted            []Deletion
	Objects            int
	Bytes              int64
	GenerationsDeleted []string // generations removed whole
	// Oldest is the oldest restorable point left; zero when the replica
	// holds no export (nothing was deleted then).
	Oldest      Point
	KeptObjects int
	KeptBytes   int64
	UnknownKeys int // objects under the prefix tailer did not write (left alone)
	// ExportTimesFromListing counts exports whose header could not be
	// read; their upload time was used instead (each is logged).
	ExportTimesFromListing int
	// Unverified lists the exports looked at that do not verify (or could
	// not be read): they were kept and not counted (each is logged).
	Unverified []Unverified
	Took       time.Duration
}

// Apply lists the replica, decides with p what no retained point needs,
// and deletes it (unless p.DryRun): per generation, exports first (so no
// remaining export ever lacks its segments), each followed by its blob
// manifest, then segments in sequence order, and generation.json last, so
// a generation being deleted never looks like a generation without
// metadata that still has data. Blob objects go last, and only those no
// remaining export's manifest and no remaining segment references, older
// than p.BlobGrace: a blob a kept point needs stays, even long after
// Stalwart purged it from disk. now is
// the current time (a parameter so the run loop and tests control it).
//
// An error part-way leaves a consistent replica (every remaining export
// keeps its chain) and the report of what was deleted so far; running it
// again finishes the job.
func Apply(ctx context.Context, r uploader.Replica, p Policy, now time.Time, log *slog.Logger) (Report, error) {
	start := time.Now()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := Report{DryRun: p.DryRun}
	if err := p.Validate(); err != nil {
		return rep, err
	}
	var queued map[blobfs.Hash]bool
	guard := p.Blobs
	if p.SkipBlobs || p.DryRun {
		guard = nil
	}
	if guard != nil {
		// Before the listing: what leaves the shipper's queue from now on
		// is either in the listing or noted by the guard.
		q, err := guard.BeginBlobGC(ctx)
		switch {
		case ctx.Err() != nil:
			return rep, ctx.Err()
		case err != nil:
			// The rest of retention needs no guard; blobs wait a round.
			log.Warn("retention: blob objects are left alone this round", "replica", r.String(), "err", err)
			p.SkipBlobs, guard = true, nil
		default:
			defer guard.EndBlobGC()
			queued = q
		}
	}
	gens, unknown, err := catalog.List(ctx, r, nil)
	if err != nil {
		return rep, fmt.Errorf("retention: %w", err)
	}
	rep.UnknownKeys = len(unknown)
	times, framing, err := exportTimes(ctx, r, gens, &rep, log)
	if err != nil {
		return rep, err
	}
	v := &verifier{ctx: ctx, r: r, cache: p.Cache, framing: framing, log: log, rep: &rep}
	pl, err := decide(gens, times, v.ok, p, now)
	if v.canceled != nil {
		return rep, v.canceled
	}
	if err != nil {
		return rep, err
	}
	listed := map[cacheKey]bool{}
	for _, g := range gens {
		for _, e := range g.Exports {
			listed[v.key(e)] = true
		}
	}
	p.Cache.forget(r.String(), listed)
	if pl.oldest.Generation != "" && !p.SkipBlobs {
		// Blobs are decided on what stays after the plan, and listed after
		// the generations: a blob uploaded since (for a segment not listed
		// here) is younger than the grace period.
		del := make(map[string]bool, len(pl.deletions))
		for _, d := range pl.deletions {
			del[d.Key] = true
		}
		blobs, unknownBlobs, err := planBlobs(ctx, r, gens, del, queued, p, now, log)
		if err != nil {
			return rep, err
		}
		rep.UnknownKeys += unknownBlobs
		pl.deletions = append(pl.deletions, blobs...)
	}
	rep.Oldest, rep.KeptObjects, rep.KeptBytes = pl.oldest, pl.keptObjects, pl.keptBytes
	if pl.noneVerifies {
		log.Error("retention: no export verifies; nothing deleted", "replica", r.String(), "exports", len(rep.Unverified))
		rep.Took = time.Since(start)
		return rep, ErrNothingVerifies
	}
	if len(pl.deletions) == 0 {
		log.Info("retention: nothing to delete", "oldest_generation", pl.oldest.Generation, "oldest_export_seq", pl.oldest.ExportSeq)
		rep.Took = time.Since(start)
		return rep, nil
	}
	var blobs []Deletion
	for _, d := range pl.deletions {
		if d.Kind == KindBlob && guard != nil {
			blobs = append(blobs, d) // last in the plan: deleted below, through the guard
			continue
		}
		if err := apply(ctx, r, d, p.DryRun, &rep, log); err != nil {
			rep.Took = time.Since(start)
			return rep, err
		}
	}
	if len(blobs) > 0 {
		err := guard.DeleteBlobs(ctx, func(referenced func(blobfs.Hash) bool) ([]blobfs.Hash, error) {
			var tried []blobfs.Hash
			for _, d := range blobs {
				h, _ := layout.ParseBlobKey(d.Key)
				if referenced(h) {
					log.Info("retention: kept a blob the running tailer referenced meanwhile", "key", d.Key)
					continue
				}
				tried = append(tried, h)
				if err := apply(ctx, r, d, false, &rep, log); err != nil {
					return tried, err
				}
			}
			return tried, nil
		})
		if err != nil {
			rep.Took = time.Since(start)
			return rep, err
		}
	}
	rep.Took = time.Since(start)
	log.Info("retention: done", "dry_run", p.DryRun, "objects", rep.Objects, "bytes", rep.Bytes,
		"generations", len(rep.GenerationsDeleted), "oldest_generation", pl.oldest.Generation,
		"oldest_export_seq", pl.oldest.ExportSeq, "oldest_export_time", pl.oldest.ExportTime)
	return rep, nil
}

// apply deletes one planned object (unless dryRun) and reports it.
func apply(ctx context.Context, r uploader.Replica, d Deletion, dryRun bool, rep *Report, log *slog.Logger) error {
	verb := "deleted"
	if dryRun {
		verb = "would delete"
	} else if err := r.Delete(ctx, d.Key); err != nil {
		return fmt.Errorf("retention: delete %s: %w", d.Key, err)
	}
	log.Info("retention: "+verb, "key", d.Key, "bytes", d.Size, "reason", d.Reason)
	rep.Deleted = append(rep.Deleted, d)
	rep.Objects++
	rep.Bytes += d.Size
	if d.Kind == KindGeneration {
		rep.GenerationsDeleted = append(rep.GenerationsDeleted, d.Generation)
	}
	return nil
}

// exportTimes reads when each export was taken from its header (one small
// ranged read at each end of the object), the time `restore --time`
// compares against. An unreadable header falls back to the LIST time,
// which is later (an export is uploaded after it is taken), so the
// fallback can only keep more, never less. Such an export cannot verify
// either: the second map holds why, keyed by the export's key.
func exportTimes(ctx context.Context, r uploader.Replica, gens []layout.Generation, rep *Report, log *slog.Logger) (map[string]time.Time, map[string]error, error) {
	out, bad := map[string]time.Time{}, map[string]error{}
	for _, g := range gens {
		for _, e := range g.Exports {
			h, _, err := catalog.ReadFraming(ctx, r, e.Key, e.Size)
			if err != nil {
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				log.Warn("retention: cannot read the export's header; using its upload time", "key", e.Key, "err", err)
				out[e.Key] = e.Modified
				bad[e.Key] = err
				rep.ExportTimesFromListing++
				continue
			}
			out[e.Key] = h.Created
		}
	}
	return out, bad, nil
}
