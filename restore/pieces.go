package restore

// The one-shot pieces a warm standby (package standby) reuses to keep a
// restored store current: checking its directory, fetching and verifying
// the segments that appeared since, applying them through the store's
// WAL, flushing at a stop, and writing the blobs the store references.
// Layers point one way: standby imports restore, never the other way, so
// these are the only names restore exports for it; the standby's own
// logic (position, state file, rebuilds, listings) lives in standby.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/uploader"
)

// CheckTarget refuses dir unless it is missing or empty, with Run's
// message: a standby's first build goes where Run would restore, and the
// standby checks it before anything else so its own refusal can add why.
func CheckTarget(dir string) error {
	_, err := checkTarget(dir)
	return err
}

// Segments are downloaded segments, each verified whole, ready to apply
// in order. A standby fetches the few that appeared since its last step
// (FetchSegments) and applies them (Apply) without planning a restore.
type Segments struct{ f fetched }

// FetchSegments downloads segs (of generation gen, in chain order) into
// work and verifies each completely, as Run does before anything reaches
// a target. It stops at the first damaged segment: the error then
// satisfies Damaged, and the segments before it stay in the result so
// they can still be applied. Close the result whatever the error.
func FetchSegments(ctx context.Context, r uploader.Replica, gen string, segs []layout.Segment, work string, log *slog.Logger) (*Segments, error) {
	s := &Segments{}
	err := s.f.fetchSegments(ctx, r, gen, segs, work, nil, log)
	return s, err
}

// Len is how many segments were fetched and verified: a standby with none
// has nothing to apply.
func (s *Segments) Len() int { return len(s.f.segments) }

// Close closes the downloaded files; the caller removes its work dir.
func (s *Segments) Close() { s.f.close() }

// Damaged reports whether err (from FetchSegments) is damage to one
// object that retrying will not fix (corrupt, truncated, from a newer
// format, misnamed, or listed then gone), naming its key and what is
// wrong: a standby leaves that object out and follows through other
// copies of its batches, while any other error is retried.
func Damaged(err error) (key, why string, ok bool) {
	var d *damage
	if !errors.As(err, &d) {
		return "", "", false
	}
	return d.key, d.describe(), true
}

// ApplyOptions are a standby's hooks into Apply.
type ApplyOptions struct {
	// Commits, if set, hears the hash of every blob commit key (a put of
	// a bare hash in family k) of each batch applied: a standby fetches
	// those blobs after the step.
	Commits func(blobfs.Hash)
	// AfterBatch, if set, runs after each batch written (n batches so far
	// in this Apply): a test kills its process there to prove a standby
	// recovers exactly the batches written.
	AfterBatch func(n int)
}

// Applied says how far Apply brought the store.
type Applied struct {
	Seq            uint64 // the source sequence number the store now equals
	Batches        int    // batches applied
	CapturedUnixMs int64  // capture time of the last batch applied (0 if none)
}

// Apply replays the batches of segs after base up to target into st,
// whole batches only, each written through st's own WAL: a standby must
// survive kill -9 with a prefix of whole batches, because it derives its
// position from the sequence number RocksDB recovers. Batches at or
// before base (an overlapping segment) are skipped; a batch that does not
// follow the one before fails it. A cancelled ctx stops it between two
// batches, with the error and the position reached.
func Apply(ctx context.Context, st *store.Store, segs *Segments, base, target uint64, o ApplyOptions, log *slog.Logger) (Applied, error) {
	rep, err := replay(ctx, st, &segs.f, base, target, replayOptions{wal: true, commits: o.Commits, afterBatch: o.AfterBatch}, log)
	return Applied{Seq: rep.seq, Batches: rep.batches, CapturedUnixMs: rep.captured}, err
}

// Flush flushes every family's memtable and waits: a standby stops with
// its store durable in SST files and at a batch boundary, as Run hands
// over a restored one.
func Flush(st *store.Store) error { return finish(st) }

// BlobWriter writes the blobs a store references into a blob directory,
// as Run does after a restore. A standby keeps its blob directory current
// with one: the whole set after a rebuild, the blobs its applied batches
// committed after each step.
type BlobWriter struct{ r blobRestorer }

// NewBlobWriter checks o (a directory and a valid depth) and that the
// blob directory and the store's directory storeDir do not overlap,
// without touching either; errors wrap ErrBlobDir.
func NewBlobWriter(o BlobOptions, storeDir string, r uploader.Replica) (*BlobWriter, error) {
	l, err := o.layout()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBlobDir, o.Dir, err)
	}
	if err := apart(abs, storeDir); err != nil {
		return nil, err
	}
	l.Root = abs
	return &BlobWriter{r: blobRestorer{replica: r, layout: l, workers: o.Workers, log: slog.New(slog.DiscardHandler)}}, nil
}

// Dir is the blob directory, absolute: a standby records it in its state
// so a restart with another directory is refused.
func (w *BlobWriter) Dir() string { return w.r.layout.Root }

// Depth is the directory's layout depth, recorded beside Dir for the
// same reason.
func (w *BlobWriter) Depth() int { return w.r.layout.Levels }

// Claim makes the blob directory the caller's: it creates it, or checks
// that the existing one is empty (an error wrapping ErrBlobDir if not),
// since tailer never writes into a blob store it did not start.
func (w *BlobWriter) Claim() error {
	_, err := claimBlobDir(w.r.layout.Root)
	return err
}

// All writes every blob st's family k references and the directory
// lacks, judging temporary links at capturedUnixMs, the capture time of
// the store's last batch (0: unknown, every temporary link counts).
func (w *BlobWriter) All(ctx context.Context, st *store.Store, capturedUnixMs int64) (BlobResult, error) {
	return w.r.all(ctx, st, pointTime(capturedUnixMs))
}

// Refs writes the blobs refs name that the directory lacks, judged at
// capturedUnixMs as in All, fetching each by its key without listing the
// replica: a standby's step names only a few.
func (w *BlobWriter) Refs(ctx context.Context, refs []bloblink.Ref, capturedUnixMs int64) (BlobResult, error) {
	return w.r.refs(ctx, refs, pointTime(capturedUnixMs), true)
}
