package blobship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/internal/durable"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/uploader"
)

// RestoreOptions configure Restore. Replica, Layout and Refs are required.
type RestoreOptions struct {
	Replica uploader.Replica
	// Layout is the blob store to write: its root (created if needed) and
	// the depth the restored Stalwart is configured with.
	Layout blobfs.Layout
	// Refs are the blobs the restored store's family k references
	// (bloblink.Read on the restored store).
	Refs []bloblink.Ref
	// Now is the restored point's time in seconds since the Unix epoch:
	// temporary links expiring by then hold nothing (bloblink.Ref.Held).
	// 0 counts every temporary link.
	Now uint64
	// Workers is how many blobs are fetched and written at once (default
	// DefaultWorkers): a store of many small messages is bound by the
	// replica's latency.
	Workers int
	// NoList skips listing blobs/ first and asks for each blob directly
	// (one GET each, a missing one answers not found): for a few blobs
	// (a follower's step) in a replica of many, where one LIST of every
	// blob would cost more than the blobs.
	NoList bool
	// Progress, if set, is called after each blob with the number of
	// blobs done and the total (len(Refs)); calls may come from several
	// goroutines at once.
	Progress func(done, total int64)
	// Log receives one record per blob that could not be restored.
	Log *slog.Logger
}

// DefaultWorkers is Restore's default concurrency.
const DefaultWorkers = 8

// MissingBlob is a blob the restored store needs that the replica does
// not hold (or holds damaged).
type MissingBlob struct {
	Hash  blobfs.Hash
	Owner string // bloblink.Ref.OwnerString
	Why   string
}

// RestoreReport says what Restore did.
type RestoreReport struct {
	// Written blobs were fetched, verified and written; Bytes is the size
	// of their files.
	Written int
	Bytes   int64
	// Present blobs were already in the target, verified.
	Present int
	// Optional blobs were referenced but not required (dead, awaiting
	// Stalwart's purge, or still being written at the point) and not in
	// the replica; nothing needs them.
	Optional int
	// Missing are required blobs that could not be restored: mail lost.
	// Sorted by hash.
	Missing []MissingBlob
}

// ErrMissingBlobs is wrapped by RestoreReport.Err when required blobs
// could not be restored.
var ErrMissingBlobs = errors.New("blobs the restored store references are missing")

// Err is nil when every required blob was restored.
func (r RestoreReport) Err() error {
	if len(r.Missing) == 0 {
		return nil
	}
	m := r.Missing[0]
	return fmt.Errorf("%w: %d, the first %s of %s (%s)", ErrMissingBlobs, len(r.Missing), m.Hash.Name(), m.Owner, m.Why)
}

// ErrExists is wrapped by Restore when the target holds a file under a
// blob's name that does not match it: tailer never overwrites a file it
// did not write.
var ErrExists = errors.New("a different file is already in the blob store")

// outcome is what restoring one ref did.
type outcome int

const (
	outWritten outcome = iota
	outPresent
	outOptional
	outMissing
)

// Restore writes every referenced blob the replica holds into the target
// blob store, verifying each against its hash, and reports required blobs
// it could not restore. Files are written under a temporary name, synced
// and renamed into place, so a restore cut short leaves no partial blob
// under a real name; directories it creates are owned.DirMode (they hold
// mail). The error is for failures that stop the restore (the replica
// cannot be listed or read, the target cannot be written); the first one
// stops every worker.
func Restore(ctx context.Context, opt RestoreOptions) (RestoreReport, error) {
	var rep RestoreReport
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Replica == nil {
		return rep, errors.New("blob restore: no replica")
	}
	if _, err := owned.MkdirAll(opt.Layout.Root); err != nil {
		return rep, fmt.Errorf("create blob store %s: %w", opt.Layout.Root, err)
	}
	var held map[blobfs.Hash]int64
	if !opt.NoList {
		var err error
		if held, err = Listed(ctx, opt.Replica); err != nil {
			return rep, err
		}
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		done  int64
		next  int
		wg    sync.WaitGroup
	)
	total := int64(len(opt.Refs))
	for range min(workers, len(opt.Refs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(opt.Refs) || ctx.Err() != nil {
					return
				}
				r := opt.Refs[i]
				out, size, why, err := restoreOne(ctx, opt, held, r)
				mu.Lock()
				switch {
				case err != nil:
					if first == nil {
						first = err
					}
					cancel()
				case out == outWritten:
					rep.Written++
					rep.Bytes += size
				case out == outPresent:
					rep.Present++
				case out == outOptional:
					rep.Optional++
				case out == outMissing:
					rep.Missing = append(rep.Missing, MissingBlob{Hash: r.Hash, Owner: r.OwnerString(), Why: why})
				}
				done++
				d := done
				mu.Unlock()
				if out == outMissing && err == nil {
					log.Error("a blob the restored store references cannot be restored", "blob", r.Hash.Name(), "owner", r.OwnerString(), "why", why)
				}
				if opt.Progress != nil && err == nil {
					opt.Progress(d, total)
				}
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(rep.Missing, func(a, b MissingBlob) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
	if first != nil {
		return rep, first
	}
	return rep, ctx.Err()
}

// restoreOne restores one referenced blob.
func restoreOne(ctx context.Context, opt RestoreOptions, held map[blobfs.Hash]int64, r bloblink.Ref) (outcome, int64, string, error) {
	required := r.Required(opt.Now)
	path := opt.Layout.Path(r.Hash)
	if res, err := blobfs.Verify(path, r.Hash); err == nil {
		if res.Status == blobfs.Complete {
			return outPresent, 0, "", nil
		}
		return 0, 0, "", fmt.Errorf("%w: %s does not match its name (%s); restore into an empty directory", ErrExists, path, res.Why)
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, 0, "", err
	}
	absent := func(why string) (outcome, int64, string, error) {
		if required {
			return outMissing, 0, why, nil
		}
		return outOptional, 0, "", nil
	}
	if held != nil {
		if _, ok := held[r.Hash]; !ok {
			return absent("not in the replica")
		}
	}
	file, why, err := Fetch(ctx, opt.Replica, r.Hash)
	if err != nil {
		return 0, 0, "", err
	}
	if why != "" {
		if held == nil && why == whyGone {
			why = "not in the replica"
		}
		return absent(why)
	}
	if err := writeAtomic(path, file); err != nil {
		return 0, 0, "", err
	}
	return outWritten, int64(len(file)), "", nil
}

const whyGone = "deleted from the replica since it was listed"

// Fetch downloads and checks one blob: the file's bytes, exactly as
// Stalwart wrote them (marker included), verified against h. why is set
// when the replica has no usable object for h (absent, damaged, or not the
// blob its key names); err when the replica failed.
func Fetch(ctx context.Context, r uploader.Replica, h blobfs.Hash) (file []byte, why string, err error) {
	key := layout.BlobKey(h)
	rc, err := r.Get(ctx, key)
	if errors.Is(err, uploader.ErrNotFound) {
		return nil, whyGone, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("fetch blob: %w", err)
	}
	obj, err := readObject(rc, key)
	rc.Close()
	if errors.Is(err, ErrFormat) || errors.Is(err, uploader.ErrTampered) {
		return nil, err.Error(), nil
	}
	if err != nil {
		return nil, "", err
	}
	file, err = Decode(key, obj)
	if err != nil {
		return nil, err.Error(), nil
	}
	if res := blobfs.VerifyBytes(file, h); res.Status != blobfs.Complete {
		return nil, fmt.Sprintf("%s does not hold the blob it is named for: %s", key, res.Why), nil
	}
	return file, "", nil
}

// writeAtomic writes data to path through a temporary file in the same
// directory, synced, then renamed, then the directory synced.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if _, err := owned.MkdirAll(dir); err != nil {
		return fmt.Errorf("create blob directory %s: %w", dir, err)
	}
	if err := durable.WriteFile(path, data, ".tailer-tmp-*"); err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	return nil
}
