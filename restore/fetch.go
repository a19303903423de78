package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/safepath"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// fetched holds the downloaded, verified objects of a plan.
type fetched struct {
	export   *segment.Reader
	segments []*segment.Reader
	keys     []string // object key of each segment, for messages
	bytes    int64
	closers  []*os.File
	// progress, if set, hears of every byte downloaded (Options.Progress,
	// phase "download"), against total.
	progress func(phase string, done, total int64)
	total    int64
}

func (f *fetched) close() {
	for _, c := range f.closers {
		c.Close()
	}
}

// damage is an object of the plan that cannot be used: corrupt or
// truncated (its checksums fail), written by a newer format, misnamed, or
// gone from the replica since the LIST. Unlike a storage or network error
// it will not go away by retrying, so restore may route around it (an
// older export) or, with AllowPartial, stop before it.
type damage struct {
	key    string
	export bool
	index  int // position in Plan.Segments of a damaged segment
	err    error
}

func (d *damage) Error() string { return d.err.Error() }
func (d *damage) Unwrap() error { return d.err }

// describe names the object and what is wrong with it, for errors and
// notes (the format errors name the object themselves).
func (d *damage) describe() string {
	if errors.Is(d.err, uploader.ErrNotFound) {
		kind := "segment"
		if d.export {
			kind = "export"
		}
		return fmt.Sprintf("%s %s is missing from the replica (listed, then not found)", kind, d.key)
	}
	return d.err.Error()
}

// asDamage classifies err from downloading or checking key: segment
// format errors (corrupt, truncated, newer version, wrong kind), an
// encrypted object that fails authentication (the same damage, seen
// through encryption) and a missing object are damage; anything else
// (network, disk, a wrong or missing key) is not.
func asDamage(key string, err error) error {
	var se *segment.Error
	isFormat := errors.As(err, &se) && (errors.Is(err, segment.ErrCorrupt) || errors.Is(err, segment.ErrVersion) || errors.Is(err, segment.ErrKind))
	if isFormat || errors.Is(err, uploader.ErrTampered) || errors.Is(err, uploader.ErrNotFound) {
		return &damage{key: key, err: err}
	}
	return err
}

// fetch downloads the plan's objects and verifies each one completely
// (checksums, record counts, digests) before anything is written to the
// target. Objects in have (key -> local path) were downloaded already.
//
// A damaged export returns a *damage and nothing else. A damaged segment
// returns a *damage together with the export and the segments before it,
// still open, so the caller can restore up to the last good batch; any
// other error closes everything.
func fetch(ctx context.Context, r uploader.Replica, plan Plan, work string, have map[string]string, log *slog.Logger, progress func(string, int64, int64)) (*fetched, error) {
	f := &fetched{progress: progress}
	if progress != nil {
		for _, o := range append([]layout.Object{{Key: plan.Export.Key, Size: plan.Export.Size}}, segObjects(plan.Segments)...) {
			if _, ok := have[o.Key]; !ok {
				f.total += o.Size
			}
		}
		progress("download", 0, f.total)
	}
	if err := f.fetchExport(ctx, r, plan.Generation.ID, plan.Export, work, have, log); err != nil {
		f.close()
		return nil, err
	}
	if err := f.fetchSegments(ctx, r, plan.Generation.ID, plan.Segments, work, have, log); err != nil {
		var d *damage
		if errors.As(err, &d) {
			return f, d
		}
		f.close()
		return nil, err
	}
	return f, nil
}

// open downloads key into work (unless have holds it already), opens it
// and verifies it whole.
func (f *fetched) open(ctx context.Context, r uploader.Replica, key, work string, have map[string]string) (*segment.Reader, error) {
	path, ok := have[key]
	if !ok {
		var err error
		if path, err = safepath.Join(work, key); err != nil {
			return nil, fmt.Errorf("restore work dir: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), owned.DirMode); err != nil {
			return nil, fmt.Errorf("restore work dir: %w", err)
		}
		src := r
		if f.progress != nil {
			src = countingReplica{r, f}
		}
		n, err := uploader.Download(ctx, src, key, path)
		if err != nil {
			return nil, asDamage(key, fmt.Errorf("download %s: %w", key, err))
		}
		f.bytes += n
		f.report()
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open downloaded %s: %w", key, err)
	}
	f.closers = append(f.closers, file)
	st, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("open downloaded %s: %w", key, err)
	}
	rd, err := segment.Open(file, st.Size(), key)
	if err == nil {
		err = rd.Verify()
	}
	if err != nil {
		return nil, asDamage(key, err)
	}
	return rd, nil
}

func misnamed(key, format string, args ...any) error {
	return &damage{key: key, err: fmt.Errorf("%s: "+format+": the object is misnamed or corrupt", append([]any{key}, args...)...)}
}

// fetchExport downloads and verifies the export e of generation gen into
// f.export. Damage comes back as a *damage marked as an export.
func (f *fetched) fetchExport(ctx context.Context, r uploader.Replica, gen string, e layout.Export, work string, have map[string]string, log *slog.Logger) error {
	log.Info("downloading export", "key", e.Key, "bytes", e.Size)
	rd, err := f.open(ctx, r, e.Key, work, have)
	if err == nil {
		h := rd.Header()
		switch {
		case h.Kind != segment.KindExport || h.LastSeq != e.Seq:
			err = misnamed(e.Key, "header says %v at seq %d, the name says an export at %d", h.Kind, h.LastSeq, e.Seq)
		case h.Generation != gen:
			err = misnamed(e.Key, "header says generation %s, the object is stored under %s", h.Generation, gen)
		}
	}
	if err != nil {
		var d *damage
		if errors.As(err, &d) {
			d.export = true
		}
		return err
	}
	f.export = rd
	return nil
}

// fetchSegments downloads and verifies segs (of generation gen) in order,
// appending each to f.segments. It stops at the first damaged one and
// returns it as a *damage whose index is its position in segs; the
// segments before it stay in f, open, so a caller can still replay them.
// A standby uses it alone (FetchSegments), a few segments at a time, as
// they appear.
func (f *fetched) fetchSegments(ctx context.Context, r uploader.Replica, gen string, segs []layout.Segment, work string, have map[string]string, log *slog.Logger) error {
	for i, s := range segs {
		rd, err := f.open(ctx, r, s.Key, work, have)
		if err == nil {
			h := rd.Header()
			switch {
			case h.Kind != segment.KindSegment || h.FirstSeq != s.First || h.LastSeq != s.Last:
				err = misnamed(s.Key, "header says %v %d..%d, the name says a segment %d..%d", h.Kind, h.FirstSeq, h.LastSeq, s.First, s.Last)
			case h.Generation != gen:
				err = misnamed(s.Key, "header says generation %s, the object is stored under %s", h.Generation, gen)
			}
		}
		if err != nil {
			var d *damage
			if errors.As(err, &d) {
				d.index = i
			}
			return err
		}
		f.segments = append(f.segments, rd)
		f.keys = append(f.keys, s.Key)
		if (i+1)%100 == 0 {
			log.Info("downloading segments", "done", i+1, "of", len(segs))
		}
	}
	return nil
}

func segObjects(segs []layout.Segment) []layout.Object {
	out := make([]layout.Object, len(segs))
	for i, s := range segs {
		out[i] = layout.Object{Key: s.Key, Size: s.Size}
	}
	return out
}

// report tells the progress callback the bytes downloaded so far.
func (f *fetched) report() {
	if f.progress != nil {
		f.progress("download", f.bytes, f.total)
	}
}

// countingReplica reports download progress while an object streams in,
// so a large export shows movement before it is whole. Download only
// calls Get.
type countingReplica struct {
	uploader.Replica
	f *fetched
}

func (c countingReplica) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := c.Replica.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return &countingReader{rc, c.f, c.f.bytes}, nil
}

type countingReader struct {
	io.ReadCloser
	f    *fetched
	done int64 // f.bytes plus what this object yielded so far
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.done += int64(n)
	c.f.progress("download", c.done, c.f.total)
	return n, err
}
