package retention

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// DefaultBlobGrace is how old a blob object must be before retention may
// delete it (Policy.BlobGrace 0). tailer uploads a blob before the
// segment that commits it, so a young blob no listed object names may be
// waiting for a segment still in the spool (behind a slow or unreachable
// replica); a day covers every such wait in practice, and keeping an
// unneeded blob a day longer costs only its bytes.
const DefaultBlobGrace = 24 * time.Hour

// keptBlobs is what the kept points need: the blobs their exports'
// manifests list and their segments' batches commit. unknown is set when
// that cannot be known (a kept export without a readable manifest, a kept
// segment that cannot be read): then no blob is deleted.
type keptBlobs struct {
	need    map[blobfs.Hash]bool
	unknown string
}

// blobCandidates are the blob objects older than the grace period that no
// kept manifest lists, in key order: the ones the kept segments may still
// save. Pure, for tests.
func blobCandidates(blobs []layout.Blob, need map[blobfs.Hash]bool, now time.Time, grace time.Duration) []layout.Blob {
	var out []layout.Blob
	for _, b := range blobs {
		if !need[b.Hash] && !b.Modified.After(now.Add(-grace)) {
			out = append(out, b)
		}
	}
	return out
}

// blobDeletions returns the candidates no kept segment commits either.
func blobDeletions(cands []layout.Blob, committed map[blobfs.Hash]bool, grace time.Duration) []Deletion {
	var out []Deletion
	for _, b := range cands {
		if committed[b.Hash] {
			continue
		}
		out = append(out, Deletion{Key: b.Key, Size: b.Size, Kind: KindBlob,
			Reason: fmt.Sprintf("no kept point references it (no kept export's manifest, no kept segment), and it is older than %v", grace)})
	}
	return out
}

// planBlobs decides which blob objects to delete, after the plan's other
// deletions: the blobs of blobs/ that no export or segment left after them
// references, nor extra (what the guard's spool references). Reading the kept segments is the costly part (each is
// downloaded), so it is done only when some blob is a candidate.
func planBlobs(ctx context.Context, r uploader.Replica, gens []layout.Generation, del map[string]bool, extra map[blobfs.Hash]bool, p Policy, now time.Time, log *slog.Logger) ([]Deletion, int, error) {
	infos, err := r.List(ctx, layout.BlobsRoot)
	if err != nil {
		return nil, 0, fmt.Errorf("retention: list blobs: %w", err)
	}
	objs := make([]layout.Object, 0, len(infos))
	for _, o := range infos {
		objs = append(objs, layout.Object{Key: o.Key, Size: o.Size, Modified: o.Modified})
	}
	blobs, unknown := layout.ParseBlobs(objs)
	if len(blobs) == 0 {
		return nil, len(unknown), nil
	}
	grace := p.BlobGrace
	if grace <= 0 {
		grace = DefaultBlobGrace
	}
	need := map[blobfs.Hash]bool{}
	for h := range extra {
		need[h] = true
	}
	for _, g := range gens {
		manifests := map[uint64]layout.Export{}
		for _, m := range g.BlobManifests {
			manifests[m.Seq] = m
		}
		for _, e := range g.Exports {
			if del[e.Key] {
				continue
			}
			m, ok := manifests[e.Seq]
			if !ok {
				log.Warn("retention: a kept export has no blob manifest, so the blobs it needs are unknown; no blob is deleted", "export", e.Key)
				return nil, len(unknown), nil
			}
			hs, err := readManifest(ctx, r, m)
			if err != nil {
				if ctx.Err() != nil {
					return nil, 0, ctx.Err()
				}
				log.Warn("retention: cannot read a kept export's blob manifest; no blob is deleted", "key", m.Key, "err", err)
				return nil, len(unknown), nil
			}
			for _, h := range hs {
				need[h] = true
			}
		}
	}
	cands := blobCandidates(blobs, need, now, grace)
	if len(cands) == 0 {
		return nil, len(unknown), nil
	}
	committed := map[blobfs.Hash]bool{}
	for _, g := range gens {
		for _, s := range g.Segments {
			if del[s.Key] {
				continue
			}
			if err := segmentCommits(ctx, r, s, committed); err != nil {
				if ctx.Err() != nil {
					return nil, 0, ctx.Err()
				}
				log.Warn("retention: cannot read a kept segment's blob commits; no blob is deleted", "key", s.Key, "err", err)
				return nil, len(unknown), nil
			}
		}
	}
	return blobDeletions(cands, committed, grace), len(unknown), nil
}

// readManifest downloads and decodes one blob manifest, bounded.
func readManifest(ctx context.Context, r uploader.Replica, m layout.Export) ([]blobfs.Hash, error) {
	if m.Size > blobship.MaxManifestBytes {
		return nil, fmt.Errorf("%s: %d bytes, larger than any blob manifest", m.Key, m.Size)
	}
	rc, err := r.Get(ctx, m.Key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, blobship.MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.Key, err)
	}
	hs, err := blobship.DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Key, err)
	}
	return hs, nil
}

// segmentCommits adds the blobs a segment's batches commit to out. The
// segment is downloaded into a temporary file (verified as it is read),
// one at a time.
func segmentCommits(ctx context.Context, r uploader.Replica, s layout.Segment, out map[blobfs.Hash]bool) error {
	f, err := os.CreateTemp("", "tailer-retention-*")
	if err != nil {
		return fmt.Errorf("temporary file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rc, err := r.Get(ctx, s.Key)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("download %s: %w", s.Key, err)
	}
	return SegmentCommits(f, n, s.Key, out)
}

// SegmentCommits adds the blobs a segment's batches commit (puts of
// family k) to out, reading the segment of size bytes from ra (verified
// as it is read); name names it in errors. It is exported for the agent,
// which must count the segments still in its spool as references too.
func SegmentCommits(ra io.ReaderAt, size int64, name string, out map[blobfs.Hash]bool) error {
	rd, err := segment.Open(ra, size, name)
	if err != nil {
		return err
	}
	defer rd.Close()
	var kID uint32
	hasK := false
	for _, fam := range rd.Header().Families {
		if fam.Name == bloblink.Family {
			kID, hasK = fam.ID, true
		}
	}
	if !hasK {
		return nil // a store without blob links commits no blob
	}
	for {
		b, err := rd.NextBatch()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		err = wbatch.Each(b.Data, func(rec wbatch.Record) error {
			if rec.Op == wbatch.OpPut && rec.CF == kID && len(rec.Key) == blobfs.HashLen {
				out[blobfs.Hash(rec.Key)] = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: batch at %d: %w", name, b.Seq, err)
		}
	}
}
