package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/uploader"
)

// BlobOptions ask a restore (or a follower) to bring back Stalwart's
// filesystem blob store too, the mail itself, for the restored point.
type BlobOptions struct {
	// Dir is the blob store's root: for Run it must not exist or be
	// empty, as the store's directory; a follower keeps it current.
	Dir string
	// Depth is the depth the restored Stalwart's blob store is configured
	// with (Stalwart's default is blobfs.DefaultDepth; 0 is a flat store).
	Depth int
	// Workers is how many blobs are fetched at once (blobship default if 0).
	Workers int
}

// BlobResult says what the blob restore did.
type BlobResult struct {
	Dir string
	// Referenced is the number of blobs family k names at the point.
	Referenced int
	// Now is the time (seconds since the Unix epoch) temporary links were
	// judged at: the restored point's capture time (see pointTime).
	Now    uint64
	Report blobship.RestoreReport
	Took   time.Duration
}

// ErrBlobDir is wrapped by the errors about the blob directory given.
var ErrBlobDir = errors.New("blob directory")

// layout checks o and returns the layout to write.
func (o BlobOptions) layout() (blobfs.Layout, error) {
	if o.Dir == "" {
		return blobfs.Layout{}, fmt.Errorf("%w: none given", ErrBlobDir)
	}
	l, err := blobfs.NewLayout(o.Dir, o.Depth)
	if err != nil {
		return blobfs.Layout{}, fmt.Errorf("%w %s: %w", ErrBlobDir, o.Dir, err)
	}
	return l, nil
}

// checkBlobDir refuses a blob directory that is not empty, or that is the
// store's directory or inside it or around it (a restore writes both).
func checkBlobDir(dir, storeDir string) error {
	if err := apart(dir, storeDir); err != nil {
		return err
	}
	return checkEmpty(dir)
}

// checkEmpty refuses a blob directory that holds anything.
func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrBlobDir, dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%w %s is not empty: restore the blobs into a new or empty directory (tailer never overwrites a blob store)", ErrBlobDir, dir)
	}
	return nil
}

// apart refuses a blob directory that is the store's or nested with it.
func apart(dir, storeDir string) error {
	a, err1 := filepath.Abs(dir)
	b, err2 := filepath.Abs(storeDir)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w %s: %w", ErrBlobDir, dir, errors.Join(err1, err2))
	}
	inside := func(x, y string) bool { return x == y || strings.HasPrefix(x, y+string(filepath.Separator)) }
	if inside(a, b) || inside(b, a) {
		return fmt.Errorf("%w %s and the store's directory %s overlap: give the blobs a directory of their own, beside the store", ErrBlobDir, dir, storeDir)
	}
	return nil
}

// claimBlobDir creates dir (owned.DirMode) or checks again that the
// existing one is empty; created says which, so a failed restore removes
// only what it made.
func claimBlobDir(dir string) (created bool, err error) {
	err = os.Mkdir(dir, owned.DirMode)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("create %w %s: %w", ErrBlobDir, dir, err)
	}
	return false, checkEmpty(dir)
}

// pointTime is the time a restored point is judged at for temporary blob
// links, in seconds since the Unix epoch: the capture time of its last
// batch (tailer's clock when it read it), or the export's time when no
// batch was replayed. The point's own time, not the wall clock of the
// restore: a temporary link valid then holds a blob the point's next
// batches may link to a message (an upload, an ingest in progress), so the
// blob belongs to that state; judged at the restore's time almost every
// such link would have expired and the blob be treated as optional.
func pointTime(capturedUnixMs int64) uint64 {
	if capturedUnixMs <= 0 {
		return 0 // unknown: every temporary link counts
	}
	return uint64(capturedUnixMs / 1000)
}

// blobRestorer writes the blobs a store references into a blob store.
type blobRestorer struct {
	replica  uploader.Replica
	layout   blobfs.Layout
	workers  int
	log      *slog.Logger
	progress func(phase string, done, total int64)
}

// all restores every blob st's family k references, judged at now.
func (b blobRestorer) all(ctx context.Context, st *store.Store, now uint64) (BlobResult, error) {
	start := time.Now()
	refs, short, err := bloblink.Read(ctx, st, nil)
	if err != nil {
		return BlobResult{}, fmt.Errorf("read the restored store's blob links: %w", err)
	}
	if short > 0 {
		b.log.Warn("family k holds keys shorter than a blob hash; they name no blob and were skipped", "keys", short)
	}
	res, err := b.refs(ctx, refs, now, false)
	res.Took = time.Since(start)
	return res, err
}

// refs restores the given blobs, judged at now.
func (b blobRestorer) refs(ctx context.Context, refs []bloblink.Ref, now uint64, noList bool) (BlobResult, error) {
	res := BlobResult{Dir: b.layout.Root, Referenced: len(refs), Now: now}
	if len(refs) == 0 {
		if _, err := owned.MkdirAll(b.layout.Root); err != nil {
			return res, err
		}
		return res, nil
	}
	opt := blobship.RestoreOptions{Replica: b.replica, Layout: b.layout, Refs: refs, Now: now, Workers: b.workers, NoList: noList, Log: b.log}
	if b.progress != nil {
		opt.Progress = func(done, total int64) { b.progress("blobs", done, total) }
	}
	rep, err := blobship.Restore(ctx, opt)
	res.Report = rep
	if err != nil {
		return res, fmt.Errorf("restore the blobs into %s: %w", b.layout.Root, err)
	}
	return res, nil
}
