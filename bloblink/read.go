package bloblink

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/store"
)

// Family is the column family of blob links.
const Family = "k"

// Read returns every blob family k of st mentions as of snap (nil: the
// current state), in hash order, and the number of keys shorter than a
// hash it skipped. A store without the family (one that never stored a
// blob) has none.
func Read(ctx context.Context, st *store.Store, snap *grocksdb.Snapshot) (refs []Ref, short int, err error) {
	h := st.Handle(Family)
	if h == nil {
		return nil, 0, nil
	}
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetFillCache(false)
	if snap != nil {
		ro.SetSnapshot(snap)
	}
	it := st.DB.NewIteratorCF(ro, h)
	defer it.Close()
	var c Collector
	n := 0
	for it.SeekToFirst(); it.Valid(); it.Next() {
		if err := c.Add(it.Key().Data()); err != nil {
			return nil, 0, err
		}
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
	}
	if err := it.Err(); err != nil {
		return nil, 0, fmt.Errorf("read family k: %w", err)
	}
	return c.Refs(), c.Short, nil
}

// ReadHashes returns what family k of st says now about each of hashes
// (in any order; duplicates folded), in hash order: the links of only
// those blobs, for a follower that learnt from a batch which blobs were
// just committed. A hash with no key left (purged meanwhile) is left out.
func ReadHashes(ctx context.Context, st *store.Store, hashes []blobfs.Hash) ([]Ref, error) {
	h := st.Handle(Family)
	if h == nil || len(hashes) == 0 {
		return nil, nil
	}
	hs := slices.Clone(hashes)
	slices.SortFunc(hs, func(a, b blobfs.Hash) int { return bytes.Compare(a[:], b[:]) })
	hs = slices.Compact(hs)
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	it := st.DB.NewIteratorCF(ro, h)
	defer it.Close()
	var c Collector
	for i, hash := range hs {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for it.Seek(hash[:]); it.Valid(); it.Next() {
			key := it.Key().Data()
			if !bytes.HasPrefix(key, hash[:]) {
				break
			}
			if err := c.Add(key); err != nil {
				return nil, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read family k: %w", err)
	}
	return c.Refs(), nil
}

// Lookup returns what family k of st says about one blob as of snap (nil:
// the current state): every key with its hash as prefix. ok is false
// when k mentions it not at all. It names the owner of a blob that turns
// out to be missing (Ref.OwnerString).
func Lookup(st *store.Store, snap *grocksdb.Snapshot, h blobfs.Hash) (ref Ref, ok bool, err error) {
	fh := st.Handle(Family)
	if fh == nil {
		return Ref{}, false, nil
	}
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetFillCache(false)
	if snap != nil {
		ro.SetSnapshot(snap)
	}
	it := st.DB.NewIteratorCF(ro, fh)
	defer it.Close()
	var c Collector
	for it.Seek(h[:]); it.ValidForPrefix(h[:]); it.Next() {
		if err := c.Add(it.Key().Data()); err != nil {
			return Ref{}, false, err
		}
	}
	if err := it.Err(); err != nil {
		return Ref{}, false, fmt.Errorf("read family k: %w", err)
	}
	if refs := c.Refs(); len(refs) == 1 {
		return refs[0], true, nil
	}
	return Ref{}, false, nil
}
