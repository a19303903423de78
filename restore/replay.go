package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
)

type replayed struct {
	seq      uint64
	batches  int
	captured int64 // capture time (unix ms) of the last batch applied
	note     string
	inside   bool // the target falls inside a batch, so seq stops before it
	broken   bool // a batch does not follow the one before (only with partial)
}

// replayOptions say how replay treats a broken chain and the target's WAL.
type replayOptions struct {
	// partial ends the replay at a batch that does not follow the one
	// before (noted) instead of failing it.
	partial bool
	// wal writes every batch through the target's own WAL. A one-shot
	// restore is all-or-nothing (a half-restored target is refused on
	// retry), so the WAL buys it nothing and finish() flushes instead. A
	// follower must survive kill -9 with a prefix of whole batches: it
	// derives its position from the sequence number RocksDB recovers,
	// which only the WAL makes exact.
	wal bool
	// commits, if set, hears the hash of every blob commit key (a put of
	// a bare hash in family k) of each batch applied: a follower fetches
	// those blobs after the step.
	commits func(blobfs.Hash)
	// afterBatch, if set, runs after each batch written with wal (n
	// batches so far in this replay): a standby test kills its own
	// process there to prove a standby recovers exactly the batches
	// written.
	afterBatch func(n int)
}

// replay applies every batch after base up to target, whole batches only.
// A batch that would carry the store past target is not applied: if the
// target falls inside it, the result says so. A batch that does not
// follow the previous one (segments whose contents break the chain their
// names promise) fails the replay, or with o.partial ends it there, noted.
// A cancelled ctx stops it between two batches, with the error and the
// position reached.
func replay(ctx context.Context, st *store.Store, files *fetched, base, target uint64, o replayOptions, log *slog.Logger) (replayed, error) {
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	wo.DisableWAL(!o.wal)
	partial := o.partial
	out := replayed{seq: base}
	for i, seg := range files.segments {
		name := files.keys[i]
		remap, err := idMap(st, seg.Header().Families)
		if err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		kID, hasK := familyID(seg.Header().Families, bloblink.Family)
		for {
			b, err := seg.NextBatch()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return out, err
			}
			h, err := wbatch.ReadHeader(b.Data)
			if err != nil {
				return out, fmt.Errorf("%s: batch at %d: %w", name, b.Seq, err)
			}
			last := h.LastSeq()
			switch {
			case h.Count == 0 || last <= out.seq:
				continue // before the export, or already applied from an overlapping segment
			case h.Seq != out.seq+1:
				msg := fmt.Sprintf("%s: batch %d..%d does not follow sequence %d: the chain is broken", name, h.Seq, last, out.seq)
				if !partial {
					return out, fmt.Errorf("restore stopped: %s; %w", msg, keepsPartial(out.seq))
				}
				out.note, out.broken = fmt.Sprintf("stopped at %d instead of %d: %s", out.seq, target, msg), true
				return out, nil
			case last > target:
				if h.Seq <= target {
					out.note = fmt.Sprintf("sequence %d falls inside the batch %d..%d (one transaction); restored the state before it, at %d", target, h.Seq, last, out.seq)
					out.inside = true
				}
				return out, nil
			}
			data, err := wbatch.Remap(b.Data, remap)
			if err != nil {
				return out, fmt.Errorf("%s: batch %d: %w", name, h.Seq, err)
			}
			wb := grocksdb.WriteBatchFrom(data)
			err = st.DB.Write(wo, wb)
			wb.Destroy()
			if err != nil {
				return out, fmt.Errorf("apply batch %d..%d from %s: %w", h.Seq, last, name, err)
			}
			out.seq, out.captured = last, b.CaptureUnixMs
			out.batches++
			if o.commits != nil && hasK {
				if err := commitKeys(b.Data, kID, o.commits); err != nil {
					return out, fmt.Errorf("%s: batch %d: %w", name, h.Seq, err)
				}
			}
			if o.wal && o.afterBatch != nil {
				o.afterBatch(out.batches)
			}
			if err := ctx.Err(); err != nil {
				return out, err
			}
			if out.batches%10000 == 0 {
				log.Info("replaying", "batches", out.batches, "seq", out.seq)
			}
		}
	}
	return out, nil
}

// idMap maps the source store's column-family ids (a segment's table) to
// the target's.
func idMap(st *store.Store, fams []segment.Family) (func(uint32) (uint32, error), error) {
	m := make(map[uint32]uint32, len(fams))
	for _, f := range fams {
		h := st.Handle(f.Name)
		if h == nil {
			return nil, fmt.Errorf("the target has no family %q", f.Name)
		}
		m[f.ID] = h.ID()
	}
	return func(id uint32) (uint32, error) {
		n, ok := m[id]
		if !ok {
			return 0, fmt.Errorf("batch writes column family id %d, which the segment's family table does not name", id)
		}
		return n, nil
	}, nil
}

// familyID returns the id a segment's family table gives name.
func familyID(fams []segment.Family, name string) (uint32, bool) {
	for _, f := range fams {
		if f.Name == name {
			return f.ID, true
		}
	}
	return 0, false
}

// commitKeys calls fn with the hash of every blob commit key the batch
// puts into family kID.
func commitKeys(data []byte, kID uint32, fn func(blobfs.Hash)) error {
	return wbatch.Each(data, func(r wbatch.Record) error {
		if r.Op == wbatch.OpPut && r.CF == kID && len(r.Key) == blobfs.HashLen {
			fn(blobfs.Hash(r.Key))
		}
		return nil
	})
}
