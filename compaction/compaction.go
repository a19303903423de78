// Package compaction merges the small per-poll segments of a replica into
// wider ones (`tailer compact`, and the run loop between polls), so that a
// restore reads a few objects instead of thousands and the bucket holds
// few small ones.
//
// # Levels
//
// Levels are window widths, e.g. 1m and 1h. A segment belongs, at each
// level, to the UTC-aligned window that holds its newest capture time. A
// window is closed once it ended more than LiveEdge ago; each segment goes
// to the widest level whose window is closed, and consecutive segments of
// one generation that go to the same window are merged into one. So a
// minute of 1 s segments becomes one segment once the minute is over, and
// an hour of those becomes one once the hour is over (segments an hour old
// that were never merged go straight to the hour).
//
// Only contiguous runs merge: the next segment must start right after the
// previous one ends (never across a hole), within one generation, with the
// same source identity and column-family table. Nothing newer than
// LiveEdge is touched — neither a window that is still open nor a segment
// uploaded within it — so `tailer run` can keep shipping at the head.
//
// # Safety
//
// A merged segment is an ordinary immutable object named by its range. It
// is built locally from the verified narrow segments, uploaded, downloaded
// again and checked against them before anything is deleted: every
// checksum, the header (generation, identity, range, families), the same
// batches byte for byte with the same capture times, the labels merged
// (per account and collection, the lowest and highest change id) and the
// capture range. Until the narrow segments are deleted the bucket holds
// both copies; restore's chain prefers the widest segment and its replay
// skips batches it already applied, so a restore planned at any moment
// works.
//
// The narrow segments are deleted only once the wide one has been in the
// bucket for Grace (default 1h): a restore that listed the bucket before
// the wide segment existed still finds the narrow ones it planned with.
// Deletion re-verifies the wide segment against each narrow one first, so
// it is also how a later run finishes the job of a run that crashed or was
// stopped between upload and deletion. A wide segment found corrupt at
// that point is deleted instead, if the narrow segments still hold every
// batch of its range (restore would prefer the damaged copy). Every step
// can be repeated: Run is idempotent.
//
// Run one compactor per replica (the run loop, or `tailer compact`, not
// both at once): two would merge the same runs into identical objects and
// race to delete the narrow ones, which is harmless but wasteful.
package compaction

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// Defaults for Options.
const (
	DefaultLiveEdge = 5 * time.Minute
	DefaultGrace    = time.Hour
	DefaultMaxBytes = 1 << 30
	// DefaultCompression is the zstd level of merged segments: the agent
	// seals hot segments at a fast level, and compaction has the time to
	// store them smaller. LevelBetter stores plain-text mail ~5 % smaller
	// than LevelDefault (~11 % smaller than LevelFastest) at 60-130 MB/s;
	// LevelBest gains ~5 % more on text, nothing on attachments, at a
	// tenth of the speed (docs/benchmarks.md, "Segment compression levels").
	DefaultCompression = segment.LevelBetter
)

// DefaultLevels returns the default level widths: 1 s polls merge into
// minutes, minutes into hours.
func DefaultLevels() []time.Duration { return []time.Duration{time.Minute, time.Hour} }

// Options tune a Compactor. The zero value uses the defaults.
type Options struct {
	// Levels are the window widths, in increasing order (default 1m, 1h).
	Levels []time.Duration
	// LiveEdge: windows that ended, and segments uploaded, less than this
	// long ago are left alone (default 5m; negative: none, for tests).
	LiveEdge time.Duration
	// Grace: narrow segments are deleted once the wide segment holding
	// them is this old (default 1h). Negative: right after the wide one
	// is verified, in the same run.
	Grace time.Duration
	// MaxBytes caps a merged segment's size, as the sum of its inputs
	// (default 1 GiB), so a restore never has to fetch a huge object to
	// reach one batch.
	MaxBytes int64
	// WorkDir holds the segments being merged and verified (default: the
	// system temp directory); a run's files are removed when it returns.
	WorkDir string
	// DryRun reports what would be merged and deleted and changes nothing.
	DryRun bool
	// Compression is the zstd level merged segments are written at
	// (default DefaultCompression). Readers need not know it; merging the
	// same inputs at the same level gives the same bytes.
	Compression segment.Level

	// Test hooks: afterUpload runs right after a merged segment was
	// uploaded, afterVerify after it was verified and before any narrow
	// segment is deleted.
	afterUpload, afterVerify func(ctx context.Context, wide string) error
}

func (o Options) normalized() (Options, error) {
	if len(o.Levels) == 0 {
		o.Levels = DefaultLevels()
	}
	o.Levels = slices.Clone(o.Levels)
	for i, l := range o.Levels {
		if l < time.Second {
			return o, fmt.Errorf("compaction level %v: levels must be at least 1s", l)
		}
		if i > 0 && l <= o.Levels[i-1] {
			return o, fmt.Errorf("compaction levels %v: give them in increasing order", o.Levels)
		}
	}
	switch {
	case o.LiveEdge == 0:
		o.LiveEdge = DefaultLiveEdge
	case o.LiveEdge < 0:
		o.LiveEdge = 0
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Compression == 0 {
		o.Compression = DefaultCompression
	}
	if !o.Compression.Valid() {
		return o, fmt.Errorf("compaction: %w: %d (want one of %v)", segment.ErrUnknownLevel, int(o.Compression), segment.Levels())
	}
	return o, nil
}

// Merge is one wide segment written (or, in a dry run, planned).
type Merge struct {
	Key        string
	Size       int64 // 0 in a dry run
	Level      time.Duration
	Window     time.Time // start of the level window it covers
	Inputs     int
	InputBytes int64
	Batches    uint64 // 0 in a dry run
}

// Deletion is one narrow segment deleted (or, in a dry run, that would
// be).
type Deletion struct {
	Key  string
	Size int64
	Into string // the wide segment that holds its batches
}

// Report says what a run did.
type Report struct {
	DryRun  bool
	Merged  []Merge
	Deleted []Deletion
	// Pending counts narrow segments already merged but kept until their
	// wide segment is Grace old; a later run deletes them.
	Pending      int
	PendingBytes int64
	// WrittenBytes, DeletedBytes and DownloadedBytes total the traffic.
	WrittenBytes    int64
	DeletedBytes    int64
	DownloadedBytes int64
	// Damaged lists wide segments found corrupt and deleted because the
	// narrow segments inside them still held every batch (Run also
	// returns an error naming each).
	Damaged []string
	// FramingReads counts segments whose header and trailer were read in
	// place (a Compactor remembers them across runs).
	FramingReads int
	Took         time.Duration
}

// Compactor compacts one replica. It remembers the header and trailer
// summaries of the segments it has seen (objects never change, so the
// memory never goes stale), so that a run loop calling Run every few
// minutes reads each segment's framing once, not on every run. It is not
// safe for concurrent use.
type Compactor struct {
	r    uploader.Replica
	opts Options
	log  *slog.Logger
	seen map[string]info // segment key -> framing summary
}

// New checks opts and returns a Compactor for r. log may be nil.
func New(r uploader.Replica, opts Options, log *slog.Logger) (*Compactor, error) {
	o, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Compactor{r: r, opts: o, log: log, seen: map[string]info{}}, nil
}

// Run is New followed by one Compactor.Run, for callers that compact once.
func Run(ctx context.Context, r uploader.Replica, opts Options, now time.Time, log *slog.Logger) (Report, error) {
	c, err := New(r, opts, log)
	if err != nil {
		return Report{}, err
	}
	return c.Run(ctx, now)
}

// Run lists the replica and, generation by generation, first deletes the
// narrow segments whose wide replacement is past its grace period (after
// verifying it again), then merges the runs whose windows closed before
// now - LiveEdge. now is a parameter so that the run loop and tests
// control the clock.
//
// A problem with one run of segments (a damaged object, a failed upload)
// does not stop the others: Run goes on and returns every such error
// joined, with the report of what it did. A cancelled ctx stops it at
// once; what was left half-done is finished by the next run.
func (c *Compactor) Run(ctx context.Context, now time.Time) (Report, error) {
	start := time.Now()
	rep := Report{DryRun: c.opts.DryRun}
	gens, _, err := catalog.List(ctx, c.r, nil)
	if err != nil {
		return rep, fmt.Errorf("compaction: %w", err)
	}
	listed := map[string]bool{}
	for _, g := range gens {
		for _, s := range g.Segments {
			listed[s.Key] = true
		}
	}
	for k := range c.seen {
		if !listed[k] {
			delete(c.seen, k)
		}
	}
	work, err := os.MkdirTemp(c.opts.WorkDir, "tailer-compact-")
	if err != nil {
		return rep, fmt.Errorf("compaction work directory: %w", err)
	}
	defer os.RemoveAll(work)
	rn := &run{c: c, now: now, work: work, rep: &rep}
	var errs []error
	damaged := 0
	for _, g := range gens {
		cov := g.Coverage()
		for _, w := range cov.Uncovered {
			if in := cov.Inside[w.Key]; len(in) > 0 {
				if err := rn.retire(ctx, g, w, in); err != nil {
					if ctx.Err() != nil {
						return rn.done(start), ctx.Err()
					}
					errs = append(errs, err)
				}
			}
		}
		if healed := len(rn.rep.Damaged); healed > damaged {
			// The listing no longer says which segments are uncovered:
			// merge this generation again at the next run.
			damaged = healed
			continue
		}
		groups, gerrs := rn.groups(ctx, g, cov.Uncovered)
		if ctx.Err() != nil {
			return rn.done(start), ctx.Err()
		}
		errs = append(errs, gerrs...)
		for _, grp := range groups {
			if err := rn.merge(ctx, g, grp); err != nil {
				if ctx.Err() != nil {
					return rn.done(start), ctx.Err()
				}
				errs = append(errs, err)
			}
		}
	}
	rn.done(start)
	c.log.Info("compaction: done", "dry_run", c.opts.DryRun, "merged", len(rep.Merged), "written_bytes", rep.WrittenBytes,
		"deleted", len(rep.Deleted), "deleted_bytes", rep.DeletedBytes, "pending", rep.Pending,
		"downloaded_bytes", rep.DownloadedBytes, "errors", len(errs), "took", rep.Took)
	return rep, errors.Join(errs...)
}

// run is the state of one Compactor.Run.
type run struct {
	c    *Compactor
	now  time.Time
	work string
	rep  *Report
	n    int // names local files uniquely
}

func (rn *run) done(start time.Time) Report {
	rn.rep.Took = time.Since(start)
	return *rn.rep
}

// cutoff is the live edge: nothing at or after it is touched.
func (rn *run) cutoff() time.Time { return rn.now.Add(-rn.c.opts.LiveEdge) }

// generationPrefix is the key prefix of a generation's segments.
func generationPrefix(g layout.Generation) string { return layout.Root + g.ID + "/segments/" }
