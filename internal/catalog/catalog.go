// Package catalog reads what a replica (and optionally the local spool)
// holds as tailer's layout: the generations with their exports and
// segments, and each generation's metadata. `run` resumes from it, `list`
// prints it and `restore` plans from it. The reports built on top of it
// (status, changes) are package internal/report's: catalog knows nothing
// of the lease or the changelog.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/spool"
)

// List returns the generations in the replica plus, when sp is not nil,
// the objects still waiting in the spool, and the keys it did not
// recognise.
func List(ctx context.Context, r uploader.Replica, sp *spool.Spool) ([]layout.Generation, []string, error) {
	infos, err := r.List(ctx, layout.Root)
	if err != nil {
		return nil, nil, err // the replica names itself
	}
	objs := make([]layout.Object, 0, len(infos))
	for _, o := range infos {
		objs = append(objs, layout.Object{Key: o.Key, Size: o.Size, Modified: o.Modified})
	}
	if sp != nil {
		pending, err := sp.Pending()
		if err != nil {
			return nil, nil, fmt.Errorf("read spool: %w", err)
		}
		for _, e := range pending {
			if !strings.HasPrefix(e.Key, layout.Root) {
				continue // a blob object (blobs/): outside the generations, as in the LIST
			}
			objs = append(objs, layout.Object{Key: e.Key, Size: e.Size, Modified: time.Now()})
		}
	}
	gens, unknown := layout.Parse(objs)
	return gens, unknown, nil
}

// ReadMeta reads and decodes a generation.json from a replica.
func ReadMeta(ctx context.Context, r uploader.Replica, key string) (layout.Meta, error) {
	rc, err := r.Get(ctx, key)
	if err != nil {
		return layout.Meta{}, fmt.Errorf("read %s from %s: %w", key, r, err)
	}
	defer rc.Close()
	raw, err := ReadSmall(rc, layout.MaxMetaLen)
	if err != nil {
		return layout.Meta{}, fmt.Errorf("read %s from %s: %w", key, r, err)
	}
	return layout.DecodeMeta(key, raw)
}

// ErrTooLarge is wrapped when a small JSON object of the replica
// (generation.json, lease.json) is larger than any tailer writes: it is
// not read into memory.
var ErrTooLarge = errors.New("larger than tailer ever writes it; the object is not tailer's or is damaged")

// ReadSmall reads a whole object of at most limit bytes. Objects are
// untrusted input: a planted multi-gigabyte generation.json must not be
// read into memory.
func ReadSmall(rc io.Reader, limit int64) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("more than %d bytes: %w", limit, ErrTooLarge)
	}
	return raw, nil
}

// ReadFraming reads an object's header and trailer in place (a few small
// ranged reads at its ends, no download): enough for capture times,
// change-id labels and per-account change ids.
func ReadFraming(ctx context.Context, r uploader.Replica, key string, size int64) (segment.Header, segment.Trailer, error) {
	rd, err := segment.Open(uploader.ObjectReaderAt{Ctx: ctx, Replica: r, Key: key}, size, key)
	if err != nil {
		return segment.Header{}, segment.Trailer{}, err
	}
	defer rd.Close()
	return rd.Header(), rd.Trailer(), nil
}
