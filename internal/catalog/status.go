package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/lease"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/spool"
)

// Head is the newest point a replica can restore: what an operator checks
// before a failover, and what monitoring compares with the clock.
type Head struct {
	Replica    string `json:"replica"`
	Generation string `json:"generation"`
	// DBIdentity is the source store's RocksDB IDENTITY from
	// generation.json ("" when it cannot be read), so a caller holding the
	// primary can tell whether the replica follows that store.
	DBIdentity string `json:"db_identity,omitempty"`
	// Seq is the newest sequence number a restore reaches (the end of the
	// unbroken chain after the generation's exports); LastSeq the newest
	// the generation holds at all, beyond a hole when they differ.
	Seq     uint64 `json:"newest_restorable_seq"`
	LastSeq uint64 `json:"last_seq"`
	// Captured is when tailer captured the batch ending at Seq (its
	// segment's newest capture time), or the export's snapshot time when
	// no segment follows the export. Key is the object it was read from.
	Captured time.Time `json:"captured"`
	Key      string    `json:"key"`
	// Pending names a newer generation that has no export yet (tailer is
	// exporting it): until it has one, Seq is in the older generation.
	Pending string `json:"pending_generation,omitempty"`
	// Writer is the lease of the `tailer run` shipping to the replica, nil
	// when none holds one.
	Writer *lease.Record `json:"writer,omitempty"`
}

// ReadHead finds the replica's newest restorable point and reads its
// capture time in place (the newest segment's trailer, a few ranged
// reads; no download).
func ReadHead(ctx context.Context, r uploader.Replica) (Head, error) {
	gens, _, err := List(ctx, r, nil)
	if err != nil {
		return Head{}, err
	}
	h := Head{Replica: r.String()}
	var g *layout.Generation
	for i := len(gens) - 1; i >= 0; i-- {
		if len(gens[i].Exports) > 0 {
			g = &gens[i]
			break
		}
		if h.Pending == "" {
			h.Pending = gens[i].ID
		}
	}
	if g == nil {
		return Head{}, fmt.Errorf("%s holds no generation with an export: nothing is restorable yet (is the URL right? has `tailer run` shipped anything?)", r)
	}
	h.Generation, h.LastSeq = g.ID, g.LastSeq()
	h.Seq, _ = g.NewestRestorable()
	if g.MetaKey != "" {
		if m, err := ReadMeta(ctx, r, g.MetaKey); err == nil {
			h.DBIdentity = m.DBIdentity
		}
	}
	// The widest segment ending at Seq holds the batch; without one Seq is
	// an export's.
	var newest *layout.Segment
	for i, s := range g.Segments {
		if s.Last == h.Seq && (newest == nil || s.First < newest.First) {
			newest = &g.Segments[i]
		}
	}
	if newest != nil {
		_, tr, err := ReadFraming(ctx, r, newest.Key, newest.Size)
		if err != nil {
			return Head{}, err
		}
		h.Key, h.Captured = newest.Key, time.UnixMilli(tr.MaxCaptureUnixMs).UTC()
	} else {
		for _, e := range g.Exports {
			if e.Seq == h.Seq {
				hd, _, err := ReadFraming(ctx, r, e.Key, e.Size)
				if err != nil {
					return Head{}, err
				}
				h.Key, h.Captured = e.Key, hd.Created.UTC()
			}
		}
	}
	if h.Writer, err = readLease(ctx, r); err != nil {
		return Head{}, err
	}
	return h, nil
}

// readLease reads the replica's lease.json; nil when there is none.
func readLease(ctx context.Context, r uploader.Replica) (*lease.Record, error) {
	rc, err := r.Get(ctx, lease.Key)
	if errors.Is(err, uploader.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", lease.Key, r, err)
	}
	defer rc.Close()
	raw, err := readSmall(rc, layout.MaxMetaLen)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", lease.Key, r, err)
	}
	var rec lease.Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("%s in %s is not a lease: %w", lease.Key, r, err)
	}
	if rec.Owner == "" {
		return nil, nil // released
	}
	return &rec, nil
}

// SpoolStatus is one directory of `tailer run`'s spool as status reports
// it: what it holds that the replica has not confirmed yet.
type SpoolStatus struct {
	Dir string `json:"dir"`
	// Replica is the replica the directory records as its owner (its URL
	// as last shown), "" when an older tailer did not record it.
	Replica string `json:"replica,omitempty"`
	Objects int    `json:"objects"`
	Bytes   int64  `json:"bytes"`
}

// Spools reads the spool directories under root: the one of each replica
// in rs (by index; nil when it has none yet) and the orphans, which no
// replica in rs owns. Their objects are uploaded only by a `tailer run`
// given their replica.
func Spools(root string, rs []uploader.Replica) (own []*SpoolStatus, orphans []SpoolStatus, err error) {
	infos, err := spool.ListSpools(root)
	if err != nil {
		return nil, nil, err
	}
	own = make([]*SpoolStatus, len(rs))
	for _, i := range infos {
		s := SpoolStatus{Dir: i.Dir, Objects: i.Objects, Bytes: i.Bytes}
		if i.Owner != nil {
			s.Replica = i.Owner.Replica
		}
		mine := false
		for k, r := range rs {
			if i.OwnedBy(r) && own[k] == nil {
				own[k], mine = &s, true
				break
			}
		}
		if !mine {
			orphans = append(orphans, s)
		}
	}
	return own, orphans, nil
}
