package store

import (
	"context"
	"fmt"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/segment"
)

// Digests returns, per family in open order, the key count and digest of
// every key and value (merges resolved, range deletes applied), as of snap
// (nil: the current state). It uses the definition export trailers use
// (segment.Digest), so a restored store can be compared with an export or
// with the primary at the same sequence number.
func (s *Store) Digests(ctx context.Context, snap *grocksdb.Snapshot) ([]segment.FamilySum, error) {
	out := make([]segment.FamilySum, 0, len(s.Families))
	for _, f := range s.Families {
		sum, err := s.familyDigest(ctx, f, snap)
		if err != nil {
			return nil, err
		}
		out = append(out, sum)
	}
	return out, nil
}

func (s *Store) familyDigest(ctx context.Context, f Family, snap *grocksdb.Snapshot) (segment.FamilySum, error) {
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetFillCache(false)
	if snap != nil {
		ro.SetSnapshot(snap)
	}
	it := s.DB.NewIteratorCF(ro, f.Handle)
	defer it.Close()
	d := segment.NewDigest()
	n := 0
	for it.SeekToFirst(); it.Valid(); it.Next() {
		d.Add(it.Key().Data(), it.Value().Data())
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return segment.FamilySum{}, ctx.Err()
		}
	}
	if err := it.Err(); err != nil {
		return segment.FamilySum{}, fmt.Errorf("digest family %s: %w", f.Name, err)
	}
	return segment.FamilySum{Name: f.Name, Keys: d.Keys(), Digest: d.Sum()}, nil
}
