package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/walpin"
)

// Why the position is checked on resume: Stalwart does not fsync every
// write, so after an OS crash or power loss RocksDB may come back behind
// batches tailer had already read from the page cache and shipped, and
// hand out their sequence numbers again to new writes. If the store is
// past the shipped position before tailer polls, the sequence number
// alone looks fine and the rewritten batches up to it would be skipped as
// shipped: the bucket would restore a state that never existed. So the
// batch at the last shipped sequence number, as shipped, is compared
// with the one the store's WAL now holds there.

// reuseWhy decides from the batch shipped last (it ends at sequence
// number last) and the batch of the store's WAL that holds that sequence
// number (nil: no WAL file holds it) whether the store still has the
// history that was shipped. It returns "" when it does, else the reason
// for a new generation.
//
// A batch the WAL no longer holds is taken as unchanged: RocksDB deletes
// a WAL file only after its data is flushed, and a flush is fsynced, so
// that batch was durable and cannot have been lost. (A store that is
// behind last holds no batch there either: the first poll's
// backwards-sequence check starts the new generation then.)
func reuseWhy(last uint64, shipped layout.BatchSum, stored *layout.BatchSum) string {
	if stored == nil || *stored == shipped {
		return ""
	}
	why := fmt.Sprintf("the store's batch at seq %d differs from the one shipped: the store lost writes (power loss?) and reused sequence numbers", last)
	if stored.Seq != shipped.Seq || stored.LastSeq != shipped.LastSeq {
		why += fmt.Sprintf(" (shipped batch %d..%d, the store's %d..%d)", shipped.Seq, shipped.LastSeq, stored.Seq, stored.LastSeq)
	}
	return why
}

// sumOf identifies a raw WriteBatch.
func sumOf(data []byte) (layout.BatchSum, error) {
	h, err := wbatch.ReadHeader(data)
	if err != nil {
		return layout.BatchSum{}, err
	}
	sum := sha256.Sum256(data)
	return layout.BatchSum{Seq: h.Seq, LastSeq: h.LastSeq(), SHA256: hex.EncodeToString(sum[:])}, nil
}

// checkShippedBatch compares the last batch generation g holds with the
// store's WAL at that sequence number (reuseWhy): the last batch of its
// newest segment, or, when the generation ends with its base export, the
// batch generation.json recorded. It returns "" when there is nothing to
// compare: a generation that ends with a later (periodic) export, or
// whose base batch had been flushed when it started.
func (a *Agent) checkShippedBatch(ctx context.Context, t *target, g layout.Generation, meta layout.Meta) (string, error) {
	last := g.LastSeq()
	shipped, err := a.lastShippedBatch(ctx, t, g, last)
	if err != nil {
		return "", err
	}
	if shipped == nil && meta.BaseBatch != nil && meta.BaseBatch.LastSeq == last {
		shipped = meta.BaseBatch
	}
	if shipped == nil {
		return "", nil
	}
	stored, err := batchAt(ctx, a.cfg.DB, last, a.log)
	if err != nil {
		return "", err
	}
	return reuseWhy(last, *shipped, stored), nil
}

// lastShippedBatch identifies the batch ending at last in the smallest
// segment of g that ends there (the spool's copy when it is still queued,
// else the replica's), or returns nil when no segment ends there.
func (a *Agent) lastShippedBatch(ctx context.Context, t *target, g layout.Generation, last uint64) (*layout.BatchSum, error) {
	var segs []layout.Segment
	for _, s := range g.Segments {
		if s.Last == last {
			segs = append(segs, s)
		}
	}
	if len(segs) == 0 {
		return nil, nil
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Size < segs[j].Size })
	pending, err := t.spool.Pending()
	if err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	queued := make(map[string]string, len(pending))
	for _, e := range pending {
		queued[e.Key] = e.Path
	}
	var lastErr error
	for _, s := range segs {
		b, err := lastBatchOf(queued[s.Key], s.Key)
		if queued[s.Key] == "" || errors.Is(err, os.ErrNotExist) {
			// Not queued, or uploaded (and dropped from the spool) since.
			path := filepath.Join(a.cfg.Scratch, "resume-check.tseg")
			if _, err := uploader.Download(ctx, t.r, s.Key, path); err != nil {
				lastErr = err // compaction may have replaced it meanwhile: try the next
				continue
			}
			b, err = lastBatchOf(path, s.Key)
			os.Remove(path)
		}
		if err != nil {
			return nil, err
		}
		sum, err := sumOf(b)
		if err != nil || sum.LastSeq != last {
			return nil, fmt.Errorf("segment %s: its last batch does not end at %d: %w", s.Key, last, segment.ErrCorrupt)
		}
		return &sum, nil
	}
	return nil, fmt.Errorf("read the last shipped batch (seq %d) to check the store against it: %w", last, lastErr)
}

// lastBatchOf reads a segment file to its end (which checks its
// checksums) and returns its last batch.
func lastBatchOf(path, key string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", key, err)
	}
	rd, err := segment.Open(f, fi.Size(), key)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var last []byte
	for {
		b, err := rd.NextBatch()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		last = b.Data
	}
	if last == nil {
		return nil, fmt.Errorf("segment %s holds no batch: %w", key, segment.ErrCorrupt)
	}
	return last, nil
}

// batchAt identifies the batch of the WAL files in dir (a store's or a
// snapshot's) that holds sequence number seq, or returns nil when none
// holds it. A store's own files are read in place, not tailer's pins: a
// pin left by an earlier run may be a file of an earlier life of the
// store (restored from an older copy since) whose number the store now
// uses again for other batches.
func batchAt(ctx context.Context, dir string, seq uint64, log *slog.Logger) (*layout.BatchSum, error) {
	var found *layout.BatchSum
	_, err := walpin.NewInPlace(dir, log).Next(ctx, walpin.Cursor{}, seq, seq, func(_ uint64, data []byte) error {
		sum, err := sumOf(data)
		if err != nil {
			return fmt.Errorf("WAL batch: %w", err)
		}
		if sum.Seq <= seq && seq <= sum.LastSeq { // never a batch of no records
			found = &sum
		}
		return nil
	})
	if errors.Is(err, walpin.ErrNotPinned) {
		return nil, nil // every WAL file starts after seq: flushed and deleted
	}
	if err != nil {
		return nil, fmt.Errorf("read the WAL of %s at seq %d: %w", dir, seq, err)
	}
	return found, nil
}
