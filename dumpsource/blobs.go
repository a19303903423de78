package dumpsource

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/uploader"
)

// BlobDir is a live filesystem blob store as a stalwartfmt.BlobSource: Stalwart's
// own files. A file that does not (yet) hash to its name is not used.
type BlobDir struct{ Layout blobfs.Layout }

// Blob implements stalwartfmt.BlobSource.
func (d BlobDir) Blob(_ context.Context, h blobfs.Hash) ([]byte, bool, error) {
	file, err := os.ReadFile(d.Layout.Path(h))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read blob file: %w", err)
	}
	if blobfs.VerifyBytes(file, h).Status != blobfs.Complete {
		return nil, false, nil
	}
	return file, true, nil
}

// ReplicaBlobs is a replica's blobs/ as a stalwartfmt.BlobSource: each blob is
// fetched and checked against its hash (blobship.Fetch). Only blobs the
// listing made at NewReplicaBlobs found are asked for, so a store whose
// blobs live elsewhere costs no request per blob.
type ReplicaBlobs struct {
	r    uploader.Replica
	held map[blobfs.Hash]int64
}

// NewReplicaBlobs lists the replica's blobs; nil when it holds none.
func NewReplicaBlobs(ctx context.Context, r uploader.Replica) (*ReplicaBlobs, error) {
	held, err := blobship.Listed(ctx, r)
	if err != nil {
		return nil, err
	}
	if len(held) == 0 {
		return nil, nil
	}
	return &ReplicaBlobs{r: r, held: held}, nil
}

// Blob implements stalwartfmt.BlobSource.
func (b *ReplicaBlobs) Blob(ctx context.Context, h blobfs.Hash) ([]byte, bool, error) {
	if _, ok := b.held[h]; !ok {
		return nil, false, nil
	}
	file, why, err := blobship.Fetch(ctx, b.r, h)
	if err != nil || why != "" {
		return nil, false, err
	}
	return file, true, nil
}
