package compaction

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/safepath"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// local is a segment downloaded into the work directory.
type local struct {
	layout.Segment
	path string
}

// fetch downloads segments into the work directory. The caller removes
// them with drop once done, so a run holds at most one group on disk.
func (rn *run) fetch(ctx context.Context, segs ...layout.Segment) ([]local, error) {
	out := make([]local, 0, len(segs))
	for _, s := range segs {
		rn.n++
		dst, err := safepath.Join(rn.work, fmt.Sprintf("%06d-%s", rn.n, path.Base(s.Key)))
		if err != nil {
			drop(out)
			return nil, fmt.Errorf("compaction: %w", err)
		}
		n, err := uploader.Download(ctx, rn.c.r, s.Key, dst)
		rn.rep.DownloadedBytes += n
		if err != nil {
			drop(out)
			return nil, fmt.Errorf("compaction: %w", err)
		}
		out = append(out, local{s, dst})
	}
	return out, nil
}

func drop(ls []local) {
	for _, l := range ls {
		os.Remove(l.path)
	}
}

// merge builds, uploads and verifies the wide segment of grp, then deletes
// the narrow ones if no grace period is asked for.
func (rn *run) merge(ctx context.Context, g layout.Generation, grp group) error {
	c := rn.c
	key := layout.SegmentKey(g.ID, grp.first(), grp.last())
	m := Merge{Key: key, Level: grp.level, Window: grp.window, Inputs: len(grp.members), InputBytes: grp.bytes}
	narrow := make([]layout.Segment, len(grp.members))
	for i, mb := range grp.members {
		narrow[i] = mb.Segment
	}
	if c.opts.DryRun {
		rn.rep.Merged = append(rn.rep.Merged, m)
		if c.opts.Grace < 0 {
			for _, s := range narrow {
				rn.rep.Deleted = append(rn.rep.Deleted, Deletion{Key: s.Key, Size: s.Size, Into: key})
				rn.rep.DeletedBytes += s.Size
			}
		} else {
			rn.pending(narrow)
		}
		c.log.Info("compaction: would merge", "key", key, "level", grp.level, "window", grp.window, "segments", len(narrow), "bytes", grp.bytes)
		return nil
	}
	inputs, err := rn.fetch(ctx, narrow...)
	if err != nil {
		return err
	}
	defer drop(inputs)
	built, err := safepath.Join(rn.work, "merged-"+path.Base(key))
	if err != nil {
		return fmt.Errorf("compaction: %w", err)
	}
	h, t, err := build(built, g.ID, key, grp, inputs, segment.WithLevel(c.opts.Compression))
	defer os.Remove(built)
	if err != nil {
		return err
	}
	size, err := put(ctx, c.r, key, built)
	if err != nil {
		return err
	}
	m.Size, m.Batches = size, t.Records
	rn.rep.WrittenBytes += size
	wide := layout.Segment{Object: layout.Object{Key: key, Size: size}, First: grp.first(), Last: grp.last()}
	if c.opts.afterUpload != nil {
		if err := c.opts.afterUpload(ctx, key); err != nil {
			return err
		}
	}
	back, err := rn.fetch(ctx, wide)
	if err == nil {
		defer drop(back)
		err = verify(back[0], g.ID, inputs, true, &t)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return rn.undo(ctx, g, wide, narrow, err)
	}
	rn.rep.Merged = append(rn.rep.Merged, m)
	c.seen[key] = infoOf(h, t)
	c.log.Info("compaction: merged", "key", key, "level", grp.level, "window", grp.window,
		"segments", len(narrow), "batches", t.Records, "input_bytes", grp.bytes, "bytes", size)
	if c.opts.afterVerify != nil {
		if err := c.opts.afterVerify(ctx, key); err != nil {
			return err
		}
	}
	if c.opts.Grace >= 0 {
		rn.pending(narrow)
		return nil
	}
	return rn.delete(ctx, key, narrow)
}

// undo handles a merged segment that failed verification after upload:
// it would shadow the good narrow segments (restore prefers the widest),
// so it is deleted — but only when every narrow segment is still listed,
// so that a wide copy another compactor already relied on is never lost.
func (rn *run) undo(ctx context.Context, g layout.Generation, wide layout.Segment, narrow []layout.Segment, cause error) error {
	infos, err := rn.c.r.List(ctx, generationPrefix(g))
	if err != nil {
		return fmt.Errorf("compaction: %s failed verification (%w) and listing to undo it failed: %v", wide.Key, cause, err)
	}
	have := map[string]bool{}
	for _, o := range infos {
		have[o.Key] = true
	}
	for _, s := range narrow {
		if !have[s.Key] {
			return fmt.Errorf("compaction: %s failed verification (%w); left in place because %s is gone — check the replica", wide.Key, cause, s.Key)
		}
	}
	if err := rn.c.r.Delete(ctx, wide.Key); err != nil {
		return fmt.Errorf("compaction: %s failed verification (%w) and deleting it failed: %v", wide.Key, cause, err)
	}
	return fmt.Errorf("compaction: %s failed verification and was deleted; the narrow segments are untouched: %w", wide.Key, cause)
}

// retire deletes the narrow segments inside wide once wide is Grace old,
// after verifying that wide holds each one's batches.
func (rn *run) retire(ctx context.Context, g layout.Generation, wide layout.Segment, narrow []layout.Segment) error {
	c := rn.c
	if age := rn.now.Sub(wide.Modified); c.opts.Grace > 0 && age < c.opts.Grace {
		rn.pending(narrow)
		c.log.Debug("compaction: narrow segments kept for the grace period", "wide", wide.Key, "segments", len(narrow),
			"until", wide.Modified.Add(c.opts.Grace))
		return nil
	}
	if c.opts.DryRun {
		for _, s := range narrow {
			rn.rep.Deleted = append(rn.rep.Deleted, Deletion{Key: s.Key, Size: s.Size, Into: wide.Key})
			rn.rep.DeletedBytes += s.Size
		}
		c.log.Info("compaction: would delete narrow segments", "wide", wide.Key, "segments", len(narrow))
		return nil
	}
	ws, err := rn.fetch(ctx, wide)
	if err != nil {
		return err
	}
	defer drop(ws)
	ns, err := rn.fetch(ctx, narrow...)
	if err != nil {
		return err
	}
	defer drop(ns)
	if err := checkWhole(ws[0], g.ID); errors.Is(err, segment.ErrCorrupt) {
		return rn.heal(ctx, g, wide, ns, err)
	}
	if err := verify(ws[0], g.ID, ns, false, nil); err != nil {
		return fmt.Errorf("compaction: keeping the %d segments inside %s: %w", len(narrow), wide.Key, err)
	}
	return rn.delete(ctx, wide.Key, narrow)
}

// checkWhole reads a downloaded segment to the end, checking every
// checksum.
func checkWhole(l local, gen string) error {
	rd, f, err := openLocal(l, gen)
	if err != nil {
		return err
	}
	defer f.Close()
	defer rd.Close()
	return rd.Verify()
}

// heal deletes a corrupt wide segment when the narrow segments inside it,
// each intact, still cover its whole range: restore prefers the widest
// segment, so leaving the damaged one would make its range unrestorable
// although every batch is still in the bucket. It always returns an error
// naming the damage, which an operator should look into.
func (rn *run) heal(ctx context.Context, g layout.Generation, wide layout.Segment, narrow []local, cause error) error {
	segs := make([]layout.Segment, len(narrow))
	byKey := map[string]local{}
	for i, n := range narrow {
		segs[i] = n.Segment
		byKey[n.Key] = n
	}
	chain, err := layout.Generation{ID: g.ID, Segments: segs}.Chain(wide.First-1, wide.Last)
	if err != nil {
		return fmt.Errorf("compaction: %s is damaged and the segments inside it do not cover its range (%v); left in place: %w", wide.Key, err, cause)
	}
	for _, s := range chain {
		if err := checkWhole(byKey[s.Key], g.ID); err != nil {
			return fmt.Errorf("compaction: %s is damaged and so is %s inside it (%v); left in place: %w", wide.Key, s.Key, err, cause)
		}
	}
	if err := rn.c.r.Delete(ctx, wide.Key); err != nil {
		return fmt.Errorf("compaction: %s is damaged; deleting it failed (%v): %w", wide.Key, err, cause)
	}
	delete(rn.c.seen, wide.Key)
	rn.rep.Damaged = append(rn.rep.Damaged, wide.Key)
	rn.c.log.Error("compaction: deleted a damaged merged segment; the segments inside it hold its batches and a later run merges them again",
		"key", wide.Key, "err", cause)
	return fmt.Errorf("compaction: %s was damaged and was deleted (the %d segments inside it hold every batch): %w", wide.Key, len(chain), cause)
}

// delete removes narrow segments whose batches the verified wide segment
// holds.
func (rn *run) delete(ctx context.Context, wide string, narrow []layout.Segment) error {
	var bytes int64
	for _, s := range narrow {
		if err := rn.c.r.Delete(ctx, s.Key); err != nil {
			return fmt.Errorf("compaction: delete %s (inside %s): %w", s.Key, wide, err)
		}
		rn.c.log.Debug("compaction: deleted", "key", s.Key, "bytes", s.Size, "into", wide)
		rn.rep.Deleted = append(rn.rep.Deleted, Deletion{Key: s.Key, Size: s.Size, Into: wide})
		rn.rep.DeletedBytes += s.Size
		delete(rn.c.seen, s.Key)
		bytes += s.Size
	}
	rn.c.log.Info("compaction: deleted narrow segments", "wide", wide, "segments", len(narrow), "bytes", bytes)
	return nil
}

func (rn *run) pending(narrow []layout.Segment) {
	for _, s := range narrow {
		rn.rep.Pending++
		rn.rep.PendingBytes += s.Size
	}
}

// put uploads a local file.
func put(ctx context.Context, r uploader.Replica, key, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("compaction: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("compaction: %w", err)
	}
	if err := r.Put(ctx, key, f, st.Size()); err != nil {
		return 0, fmt.Errorf("compaction: upload %s: %w", key, err)
	}
	return st.Size(), nil
}

// openLocal opens a downloaded segment and checks that its header agrees
// with its name and generation.
func openLocal(l local, gen string) (*segment.Reader, *os.File, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, nil, fmt.Errorf("compaction: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("compaction: %w", err)
	}
	rd, err := segment.Open(f, st.Size(), l.Key)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	h := rd.Header()
	if h.Kind != segment.KindSegment || h.Generation != gen || h.FirstSeq != l.First || h.LastSeq != l.Last {
		f.Close()
		return nil, nil, fmt.Errorf("%s: header says %v of generation %s holding %d..%d; its name says a segment of %s holding %d..%d",
			l.Key, h.Kind, h.Generation, h.FirstSeq, h.LastSeq, gen, l.First, l.Last)
	}
	return rd, f, nil
}

// build writes the merged segment of grp to path from the downloaded
// inputs, reading (and so checking every checksum of) each. The header
// takes the inputs' identity and family table and the newest input's
// creation time, so that merging the same inputs again gives the same
// bytes (an upload retried after a crash rewrites identical content) at
// the same level; opts choose the level.
func build(path, gen, key string, grp group, inputs []local, opts ...segment.WriterOption) (segment.Header, segment.Trailer, error) {
	first := grp.members[0].info
	var created time.Time
	var tables []segment.Trailer
	readers := make([]*segment.Reader, 0, len(inputs))
	defer func() {
		for _, rd := range readers {
			rd.Close()
		}
	}()
	for _, in := range inputs {
		rd, f, err := openLocal(in, gen)
		if err != nil {
			return segment.Header{}, segment.Trailer{}, err
		}
		defer f.Close()
		readers = append(readers, rd)
		h := rd.Header()
		if h.DBIdentity != first.identity || fmt.Sprint(h.Families) != first.families {
			return segment.Header{}, segment.Trailer{}, fmt.Errorf("%s: identity or column families differ from %s's", in.Key, inputs[0].Key)
		}
		if h.Created.After(created) {
			created = h.Created
		}
		tables = append(tables, rd.Trailer())
	}
	hdr := readers[0].Header()
	hdr.FirstSeq, hdr.LastSeq, hdr.Created = grp.first(), grp.last(), created
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, owned.FileMode)
	if err != nil {
		return segment.Header{}, segment.Trailer{}, fmt.Errorf("compaction: %w", err)
	}
	defer out.Close()
	w, err := segment.NewSegmentWriter(out, hdr, opts...)
	if err != nil {
		return segment.Header{}, segment.Trailer{}, fmt.Errorf("compaction: %s: %w", key, err)
	}
	w.SetLabels(mergeLabels(tables))
	for i, rd := range readers {
		for {
			b, err := rd.NextBatch()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return segment.Header{}, segment.Trailer{}, err // names the input and the byte range
			}
			if err := w.Append(b); err != nil {
				return segment.Header{}, segment.Trailer{}, fmt.Errorf("compaction: %s: batch %d of %s: %w", key, b.Seq, inputs[i].Key, err)
			}
		}
	}
	t, err := w.Close()
	if err != nil {
		return segment.Header{}, segment.Trailer{}, fmt.Errorf("compaction: %s: %w", key, err)
	}
	if err := out.Sync(); err != nil {
		return segment.Header{}, segment.Trailer{}, fmt.Errorf("compaction: %s: %w", path, err)
	}
	return hdr, t, nil
}

// mergeLabels merges segment labels: per account and collection, the
// lowest of the lowest change ids and the highest of the highest, which is
// what labelling the merged batches at once would give.
func mergeLabels(ts []segment.Trailer) []segment.ChangeLabel {
	type k struct {
		account    uint32
		collection uint8
	}
	by := map[k]segment.ChangeLabel{}
	var order []k
	for _, t := range ts {
		for _, l := range t.Labels {
			key := k{l.Account, l.Collection}
			cur, ok := by[key]
			if !ok {
				by[key] = l
				order = append(order, key)
				continue
			}
			cur.MinChange = min(cur.MinChange, l.MinChange)
			cur.MaxChange = max(cur.MaxChange, l.MaxChange)
			by[key] = cur
		}
	}
	if len(order) == 0 {
		return nil
	}
	out := make([]segment.ChangeLabel, 0, len(order))
	for _, key := range order {
		out = append(out, by[key])
	}
	slices.SortFunc(out, func(a, b segment.ChangeLabel) int {
		if a.Account != b.Account {
			return int(int64(a.Account) - int64(b.Account))
		}
		return int(a.Collection) - int(b.Collection)
	})
	return out
}
