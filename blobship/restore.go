package blobship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/internal/layout"
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
	// Log receives one record per blob that could not be restored.
	Log *slog.Logger
}

// MissingBlob is a blob the restored store needs that the replica does
// not hold (or holds damaged).
type MissingBlob struct {
	Hash  blobfs.Hash
	Owner string // bloblink.Ref.OwnerString
	Why   string
}

// RestoreReport says what Restore did.
type RestoreReport struct {
	// Written blobs were fetched, verified and written.
	Written int
	// Present blobs were already in the target, verified.
	Present int
	// Optional blobs were referenced but not required (dead, awaiting
	// Stalwart's purge, or still being written at the point) and not in
	// the replica; nothing needs them.
	Optional int
	// Missing are required blobs that could not be restored: mail lost.
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

// Restore writes every referenced blob the replica holds into the target
// blob store, verifying each against its hash, and reports required blobs
// it could not restore. Files are written under a temporary name, synced
// and renamed into place, so a restore cut short leaves no partial blob
// under a real name. The error is for failures that stop the restore
// (the replica cannot be listed, the target cannot be written).
func Restore(ctx context.Context, opt RestoreOptions) (RestoreReport, error) {
	var rep RestoreReport
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Replica == nil {
		return rep, errors.New("blob restore: no replica")
	}
	if err := os.MkdirAll(opt.Layout.Root, 0o755); err != nil {
		return rep, fmt.Errorf("create blob store %s: %w", opt.Layout.Root, err)
	}
	held, err := Listed(ctx, opt.Replica)
	if err != nil {
		return rep, err
	}
	missing := func(r bloblink.Ref, why string) {
		rep.Missing = append(rep.Missing, MissingBlob{Hash: r.Hash, Owner: r.OwnerString(), Why: why})
		log.Error("a blob the restored store references cannot be restored", "blob", r.Hash.Name(), "owner", r.OwnerString(), "why", why)
	}
	for _, r := range opt.Refs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		required := r.Required(opt.Now)
		path := opt.Layout.Path(r.Hash)
		if res, err := blobfs.Verify(path, r.Hash); err == nil {
			if res.Status == blobfs.Complete {
				rep.Present++
				continue
			}
			return rep, fmt.Errorf("%w: %s does not match its name (%s); restore into an empty directory", ErrExists, path, res.Why)
		} else if !errors.Is(err, os.ErrNotExist) {
			return rep, err
		}
		if _, ok := held[r.Hash]; !ok {
			if required {
				missing(r, "not in the replica")
			} else {
				rep.Optional++
			}
			continue
		}
		file, why, err := fetch(ctx, opt.Replica, r.Hash)
		if err != nil {
			return rep, err
		}
		if why != "" {
			if required {
				missing(r, why)
			} else {
				rep.Optional++
			}
			continue
		}
		if err := writeAtomic(path, file); err != nil {
			return rep, err
		}
		rep.Written++
	}
	return rep, nil
}

// fetch downloads and checks one blob. why is set when the object is
// unusable (damaged, or not the blob its key names); err when the replica
// failed.
func fetch(ctx context.Context, r uploader.Replica, h blobfs.Hash) (file []byte, why string, err error) {
	key := layout.BlobKey(h)
	rc, err := r.Get(ctx, key)
	if errors.Is(err, uploader.ErrNotFound) {
		return nil, "deleted from the replica since it was listed", nil
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create blob directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".tailer-tmp-*")
	if err != nil {
		return fmt.Errorf("write blob %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write blob %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync blob directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync blob directory %s: %w", dir, err)
	}
	return nil
}
