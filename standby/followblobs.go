package standby

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/uploader"
)

// missingRetry is how often a follower asks the replica again for blobs
// the standby references that it did not hold: tailer uploads a blob
// before the segment committing it, so one missing is normally lost, but
// a blob re-uploaded by hand is picked up.
const missingRetry = time.Minute

// followBlobs keeps a standby's filesystem blob store current. After each
// step it fetches the blobs the applied batches committed (the commit
// keys they put into family k), with their links as the standby holds
// them after the step; after a rebuild, and after a start that does not
// follow a clean stop (a crash may have cut a step's fetch short), it
// checks the whole set the standby references. Blobs no longer
// referenced stay in the directory: removing them is Stalwart's purge's
// job once the standby is promoted, and a file tailer wrote there is
// only ever added, never deleted.
//
// All methods are no-ops on a nil *followBlobs (no FollowOptions.Blobs).
type followBlobs struct {
	dir string // absolute
	w   *restore.BlobWriter
	log *slog.Logger

	full      bool                   // check the whole set at the next sync
	pending   map[blobfs.Hash]bool   // committed by applied batches, not fetched yet
	missing   map[blobfs.Hash]bool   // referenced, not in the replica
	lastRetry time.Time              // when missing was last asked for
	captured  int64                  // capture time of the standby's last batch (unix ms)
	warned    map[blobfs.Hash]string // missing blobs reported, with their owner
}

func newFollowBlobs(o restore.BlobOptions, standby string, r uploader.Replica, log *slog.Logger) (*followBlobs, error) {
	w, err := restore.NewBlobWriter(o, standby, r)
	if err != nil {
		return nil, err
	}
	return &followBlobs{dir: w.Dir(), w: w, log: log,
		pending: map[blobfs.Hash]bool{}, missing: map[blobfs.Hash]bool{}, warned: map[blobfs.Hash]string{}}, nil
}

func (b *followBlobs) dirName() string {
	if b == nil {
		return ""
	}
	return b.dir
}

// depth is the directory's layout depth, recorded in the state.
func (b *followBlobs) depth() int {
	if b == nil {
		return 0
	}
	return b.w.Depth()
}

// claim makes the blob directory the standby's on a first start: it must
// not exist or be empty.
func (b *followBlobs) claim() error {
	if b == nil {
		return nil
	}
	if err := b.w.Claim(); err != nil {
		return err
	}
	b.full = true
	return nil
}

// resume checks the blob directory against the state of a standby being
// resumed and records it there.
func (b *followBlobs) resume(s *followState) error {
	switch {
	case b == nil && s.BlobsDir != "":
		return fmt.Errorf("%w: this standby keeps its blobs in %s: give that directory again (or follow into a new directory)", restore.ErrBlobDir, s.BlobsDir)
	case b == nil:
		return nil
	case s.BlobsDir == "":
		if err := b.claim(); err != nil { // a standby that kept no blobs until now
			return err
		}
		s.BlobsDir, s.BlobsDepth = b.dir, b.w.Depth()
	case s.BlobsDir != b.dir:
		return fmt.Errorf("%w: this standby keeps its blobs in %s, not %s: give that directory (or follow into a new directory)", restore.ErrBlobDir, s.BlobsDir, b.dir)
	case s.BlobsDepth != b.w.Depth():
		return fmt.Errorf("%w: this standby's blobs in %s are laid out with depth %d, not %d: give the same depth (or follow into a new directory)", restore.ErrBlobDir, b.dir, s.BlobsDepth, b.w.Depth())
	case !s.BlobsSynced:
		b.log.Warn("the follower did not stop cleanly: checking every blob the standby references", "dir", b.dir)
		b.full = true
	}
	return nil
}

// rebuilt says the standby was rebuilt at a point captured at capturedMs:
// the next sync checks the whole set.
func (b *followBlobs) rebuilt(capturedMs int64) {
	if b == nil {
		return
	}
	b.full, b.captured = true, capturedMs
	clear(b.pending)
}

// committed hears a commit key of an applied batch.
func (b *followBlobs) committed(h blobfs.Hash) { b.pending[h] = true }

// applied records the capture time of the last batch applied.
func (b *followBlobs) applied(capturedMs int64) { b.captured = capturedMs }

// synced reports whether the directory holds every blob the standby
// references (nothing pending, nothing missing).
func (b *followBlobs) synced() bool {
	return b == nil || !b.full && len(b.pending) == 0 && len(b.missing) == 0
}

// sync fetches what the standby references and the directory lacks: the
// whole set when due, else the blobs committed since the last sync (and,
// once a minute, those found missing before). A replica failure keeps
// them pending for the next step.
func (b *followBlobs) sync(ctx context.Context, st *store.Store, status *FollowStatus) error {
	if b.full {
		res, err := b.w.All(ctx, st, b.captured)
		if err != nil {
			return err
		}
		b.full = false
		clear(b.pending)
		clear(b.missing)
		b.record(res, status)
		b.log.Info("standby blobs checked", "dir", b.dir, "referenced", res.Referenced, "written", res.Report.Written,
			"present", res.Report.Present, "missing", len(res.Report.Missing), "took", res.Took.Round(time.Millisecond))
		return nil
	}
	hashes := make([]blobfs.Hash, 0, len(b.pending)+len(b.missing))
	for h := range b.pending {
		hashes = append(hashes, h)
	}
	if len(b.missing) > 0 && time.Since(b.lastRetry) >= missingRetry {
		for h := range b.missing {
			hashes = append(hashes, h)
		}
		b.lastRetry = time.Now()
	}
	if len(hashes) == 0 {
		return nil
	}
	refs, err := bloblink.ReadHashes(ctx, st, hashes)
	if err != nil {
		return err
	}
	res, err := b.w.Refs(ctx, refs, b.captured)
	if err != nil {
		return err
	}
	for _, h := range hashes {
		delete(b.pending, h)
		delete(b.missing, h) // re-added below if still missing
	}
	b.record(res, status)
	return nil
}

// record counts what a sync did and reports each newly missing blob once.
func (b *followBlobs) record(res restore.BlobResult, status *FollowStatus) {
	status.BlobsWritten += res.Report.Written
	for _, m := range res.Report.Missing {
		b.missing[m.Hash] = true
		if _, said := b.warned[m.Hash]; !said {
			b.warned[m.Hash] = m.Owner
			b.log.Error("a blob the standby references is not in the replica: that mail is missing on the standby", "blob", m.Hash.Name(), "owner", m.Owner, "why", m.Why)
		}
	}
	if len(res.Report.Missing) == 0 && len(b.missing) == 0 {
		b.lastRetry = time.Time{}
	}
	status.BlobsMissing = len(b.missing)
}
