// Package verify checks that what a replica holds can be restored: every
// object's checksums, every generation's chain, and (deep) real restores.
//
// A backup is only as good as its last restore, and damage in a bucket
// (a bit flip, a truncated upload, a deleted or overwritten object, an
// object from a newer tailer) is silent until someone needs it. verify
// finds it while the primary is still alive to take a new generation:
//
//   - every segment and export is downloaded and read to its end, which
//     checks the header, trailer and body checksums, record counts,
//     capture times and (exports) every family's key count and digest;
//     its header must agree with its name, its generation and the
//     generation's DB identity, and a segment's batches must follow one
//     another without a gap and fill exactly the range its name gives;
//   - every generation has a readable generation.json (of a format this
//     tailer reads) and at least one export, and its segments leave no
//     hole between its first export and its newest batch (invariant 1 of docs/design.md);
//     where two segments overlap (compaction), they hold the same batches;
//   - with Deep, it restores into a temporary directory from each export
//     to the next one's sequence and compares the result with the later
//     export's recorded digests (so the segments between them replay to
//     exactly the state the export captured, and each export loads to its
//     own digests, which restore checks), then from the newest export to
//     the newest restorable sequence.
//
// Problems are collected, not returned as errors: Run reports all of them,
// naming the object and what is wrong, so one bad object does not hide
// another. Run returns an error only when it cannot verify at all (the
// replica cannot be listed, no temporary space).
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// Options configure a verification.
type Options struct {
	Replica uploader.Replica
	// Deep also restores each generation (see the package doc): as many
	// full restores as the generation has exports.
	Deep bool
	// Temp is where objects are downloaded (one per worker at a time) and
	// deep restores are built; default os.TempDir(). Deep needs room for a
	// restored store and its export.
	Temp string
	// Parallel is how many objects are downloaded and checked at once
	// (default 4): a bucket of many small segments is bound by latency.
	Parallel int
	Log      *slog.Logger
}

// Problem is one thing wrong in a replica.
type Problem struct {
	Generation string `json:"generation,omitempty"`
	Object     string `json:"object,omitempty"` // the object's key; "" for the generation as a whole
	Problem    string `json:"problem"`
}

func (p Problem) String() string {
	switch {
	case p.Object != "":
		return p.Object + ": " + p.Problem
	case p.Generation != "":
		return "generation " + p.Generation + ": " + p.Problem
	}
	return p.Problem
}

// Generation summarises one generation.
type Generation struct {
	ID       string `json:"id"`
	Objects  int    `json:"objects"`
	Bytes    int64  `json:"bytes"`
	Exports  int    `json:"exports"`
	Segments int    `json:"segments"`
	FirstSeq uint64 `json:"first_seq"` // its first export's sequence
	LastSeq  uint64 `json:"last_seq"`  // its newest batch or export
	// Restorable is false when the generation has no export;
	// NewestRestorable is then 0.
	Restorable       bool         `json:"restorable"`
	NewestRestorable uint64       `json:"newest_restorable_seq"`
	Deep             []DeepResult `json:"deep,omitempty"`
}

// DeepResult is one restore done by a deep verification.
type DeepResult struct {
	Base    uint64 `json:"base_export_seq"`
	Seq     uint64 `json:"seq"`
	Batches int    `json:"batches"`
	// Against names the export whose digests the restored store matched,
	// "" for the restore to the newest point (restorability only).
	Against string `json:"against,omitempty"`
	OK      bool   `json:"ok"`
}

// Report is the outcome of Run.
type Report struct {
	Replica     string       `json:"replica"`
	Deep        bool         `json:"deep"`
	Objects     int          `json:"objects"`
	Bytes       int64        `json:"bytes"`
	Generations []Generation `json:"generations"`
	Problems    []Problem    `json:"problems"`
	// Warnings are not failures: objects tailer did not write, and what a
	// running tailer may still be shipping at the head of the newest
	// generation.
	Warnings []Problem `json:"warnings"`
	// Blobs sums up the blob objects of a filesystem blob store (nil for a
	// replica without blobs/ or manifests).
	Blobs *BlobSummary `json:"blobs,omitempty"`
}

// OK reports whether the replica passed.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Run verifies opts.Replica.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.Replica == nil {
		return Report{}, errors.New("verify: no replica")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	rep := Report{Replica: opts.Replica.String(), Deep: opts.Deep, Generations: []Generation{}, Problems: []Problem{}, Warnings: []Problem{}}
	gens, unknown, err := catalog.List(ctx, opts.Replica, nil)
	if err != nil {
		return rep, err
	}
	if len(gens) == 0 {
		// Passing on an empty prefix would give false comfort: it is
		// almost always a wrong URL or prefix.
		rep.Problems = append(rep.Problems, Problem{Problem: "the replica holds no generation: nothing to verify (is the URL or prefix right? has 'tailer run' shipped anything yet?)"})
	}
	for _, k := range unknown {
		rep.Warnings = append(rep.Warnings, Problem{Object: k, Problem: "not an object tailer writes (left alone)"})
	}
	tmp, err := os.MkdirTemp(opts.Temp, "tailer-verify-")
	if err != nil {
		return rep, fmt.Errorf("verify needs a temporary directory: %w (%w)", err, &setting.Error{Key: "Temp", Name: "Options.Temp", Before: "set "})
	}
	defer os.RemoveAll(tmp)
	v := &verifier{opts: opts, tmp: tmp, rep: &rep}
	// Blobs are listed after the generations: tailer uploads a blob
	// before any segment or manifest naming it, so every blob a listed
	// object references is in this listing.
	if v.blobs, err = listBlobs(ctx, opts.Replica, gens, &rep); err != nil {
		return rep, err
	}
	for i, g := range gens {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		v.generation(ctx, g, i == len(gens)-1)
	}
	if v.blobs != nil && ctx.Err() == nil {
		v.checkBlobs(ctx)
	}
	return rep, ctx.Err()
}

type verifier struct {
	opts  Options
	tmp   string
	rep   *Report
	blobs *blobSet // nil: the replica keeps no blobs
}

func (v *verifier) problem(gen, obj, format string, args ...any) {
	v.rep.Problems = append(v.rep.Problems, Problem{Generation: gen, Object: obj, Problem: fmt.Sprintf(format, args...)})
}

func (v *verifier) warn(gen, obj, format string, args ...any) {
	v.rep.Warnings = append(v.rep.Warnings, Problem{Generation: gen, Object: obj, Problem: fmt.Sprintf(format, args...)})
}

// generation verifies one generation. newest is true for the newest one,
// which a running tailer may still be filling: what is merely not shipped
// yet at its head is a warning there, a problem anywhere else.
func (v *verifier) generation(ctx context.Context, g layout.Generation, newest bool) {
	log := v.opts.Log.With("generation", g.ID)
	sum := Generation{ID: g.ID, Exports: len(g.Exports), Segments: len(g.Segments), LastSeq: g.LastSeq()}
	if len(g.Exports) > 0 {
		sum.FirstSeq = g.Exports[0].Seq
	}
	sum.NewestRestorable, sum.Restorable = g.NewestRestorable()

	meta, metaOK := v.meta(ctx, g)
	if g.MetaKey != "" {
		sum.Objects++ // its size is not listed separately; it is tiny
	}
	switch {
	case len(g.Exports) > 0:
	case newest:
		v.warn(g.ID, "", "no export yet: a running tailer may still be uploading the base export; if none is running, this generation cannot be restored")
	default:
		v.problem(g.ID, "", "no export: the generation cannot be restored (its base export never arrived or was deleted)")
	}

	log.Info("verifying objects", "exports", len(g.Exports), "segments", len(g.Segments))
	results := v.objects(ctx, g, meta, metaOK)
	for _, r := range results {
		sum.Objects++
		sum.Bytes += r.size
		if r.problem != "" {
			v.problem(g.ID, r.key, "%s", r.problem)
		}
	}
	v.rep.Objects += sum.Objects
	v.rep.Bytes += sum.Bytes

	v.chain(g, newest)
	v.overlaps(g, results)
	if v.blobs != nil && ctx.Err() == nil {
		v.references(ctx, g, results)
	}
	if v.opts.Deep && ctx.Err() == nil {
		sum.Deep = v.deep(ctx, g, results, log)
	}
	v.rep.Generations = append(v.rep.Generations, sum)
}

// meta reads and checks generation.json.
func (v *verifier) meta(ctx context.Context, g layout.Generation) (layout.Meta, bool) {
	if g.MetaKey == "" {
		v.problem(g.ID, layout.MetaKey(g.ID), "missing: every generation's %s is written before its first object", layout.MetaName)
		return layout.Meta{}, false
	}
	m, err := catalog.ReadMeta(ctx, v.opts.Replica, g.MetaKey)
	if err != nil {
		v.problem(g.ID, g.MetaKey, "%s", trimKey(err, g.MetaKey))
		return layout.Meta{}, false
	}
	if m.ID != g.ID {
		v.problem(g.ID, g.MetaKey, "names generation %s, but is stored under %s", m.ID, g.ID)
	}
	return m, true
}

// objResult is what checking one object found.
type objResult struct {
	key     string
	size    int64
	export  bool
	seq     uint64 // export: its sequence
	problem string
	trailer segment.Trailer
	batches []batchSum // segments that overlap another: every batch
	// commits are the blobs the segment's batches commit (family k):
	// each must be in blobs/.
	commits []blobfs.Hash
}

// batchSum identifies a batch without keeping its bytes.
type batchSum struct {
	seq, last uint64
	sum       uint64 // xxhash64 of the raw batch
}

// objects downloads and checks every export and segment of g, Parallel at
// a time, and returns the results in key order.
func (v *verifier) objects(ctx context.Context, g layout.Generation, meta layout.Meta, metaOK bool) []objResult {
	overlapping := overlappingSegments(g.Segments)
	type job struct {
		i       int
		key     string
		size    int64
		export  bool
		seq     uint64 // export seq, or segment first
		last    uint64
		collect bool
	}
	var jobs []job
	for _, e := range g.Exports {
		jobs = append(jobs, job{key: e.Key, size: e.Size, export: true, seq: e.Seq, last: e.Seq})
	}
	for _, s := range g.Segments {
		jobs = append(jobs, job{key: s.Key, size: s.Size, seq: s.First, last: s.Last, collect: overlapping[s.Key]})
	}
	out := make([]objResult, len(jobs))
	ch := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < min(v.opts.Parallel, len(jobs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				c := check{v: v, gen: g.ID, meta: meta, metaOK: metaOK}
				out[j.i] = c.object(ctx, j.key, j.size, j.export, j.seq, j.last, j.collect)
			}
		}()
	}
	for i := range jobs {
		jobs[i].i = i
		select {
		case ch <- jobs[i]:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(ch)
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return out
}

// check verifies one object; it is used by one worker at a time.
type check struct {
	v      *verifier
	gen    string
	meta   layout.Meta
	metaOK bool
}

// object downloads one object into the temp dir, reads it whole and
// removes it again, so disk use stays at one object per worker.
func (c check) object(ctx context.Context, key string, size int64, export bool, first, last uint64, collect bool) objResult {
	res := objResult{key: key, size: size, export: export, seq: first}
	f, err := os.CreateTemp(c.v.tmp, "object-*")
	if err != nil {
		res.problem = fmt.Sprintf("cannot check: temporary file: %v", err)
		return res
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := download(ctx, c.v.opts.Replica, key, f)
	if err != nil {
		if errors.Is(err, uploader.ErrNotFound) {
			res.problem = "listed, then not found: deleted while verify ran?"
		} else {
			res.problem = fmt.Sprintf("cannot read: %v", err)
		}
		return res
	}
	if n != size {
		res.problem = fmt.Sprintf("the listing says %d bytes, the download has %d", size, n)
		return res
	}
	rd, err := segment.Open(f, n, key)
	if err != nil {
		res.problem = trimKey(err, key)
		return res
	}
	defer rd.Close()
	if msg := c.header(rd.Header(), export, first, last); msg != "" {
		res.problem = msg
		return res
	}
	if export {
		if err := rd.Verify(); err != nil {
			res.problem = trimKey(err, key)
			return res
		}
		res.trailer = rd.Trailer()
		return res
	}
	// Reading every batch to io.EOF checks exactly what Verify checks
	// (the reader returns io.EOF only once all checksums matched), and
	// also lets the batches be checked against each other.
	kID, hasK := familyID(rd.Header().Families, bloblink.Family)
	next := first
	for {
		b, err := rd.NextBatch()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			res.problem = trimKey(err, key)
			return res
		}
		h, err := wbatch.ReadHeader(b.Data)
		if err != nil {
			res.problem = fmt.Sprintf("batch at seq %d: %v", b.Seq, err)
			return res
		}
		if h.Seq != b.Seq {
			res.problem = fmt.Sprintf("batch recorded at seq %d says it starts at %d", b.Seq, h.Seq)
			return res
		}
		if h.Count == 0 {
			res.problem = fmt.Sprintf("batch at seq %d holds no record", b.Seq)
			return res
		}
		if b.Seq != next {
			res.problem = fmt.Sprintf("batch at seq %d does not follow the one before (expected %d): sequence numbers %d..%d are missing", b.Seq, next, next, b.Seq-1)
			return res
		}
		if h.LastSeq() > last {
			res.problem = fmt.Sprintf("batch %d..%d ends after the segment's range %d..%d", h.Seq, h.LastSeq(), first, last)
			return res
		}
		next = h.LastSeq() + 1
		if hasK {
			if err := commitKeys(b.Data, kID, &res.commits); err != nil {
				res.problem = fmt.Sprintf("batch at seq %d: %v", b.Seq, err)
				return res
			}
		}
		if collect {
			res.batches = append(res.batches, batchSum{seq: h.Seq, last: h.LastSeq(), sum: xxhash.Sum64(b.Data)})
		}
	}
	if next != last+1 {
		res.problem = fmt.Sprintf("its batches end at seq %d, but its name and header say %d: sequence numbers %d..%d are missing", next-1, last, next, last)
	}
	return res
}

// download copies an object into f. Unlike uploader.Download it does not
// fsync: the copy is read at once and thrown away, and two fsyncs per
// object would dominate checking a bucket of many small segments.
func download(ctx context.Context, r uploader.Replica, key string, f *os.File) (int64, error) {
	rc, err := r.Get(ctx, key)
	if err != nil {
		return 0, err // names the replica and the key
	}
	defer rc.Close()
	n, err := io.Copy(f, rc)
	if err != nil {
		return n, fmt.Errorf("download %s from %s: after %d bytes: %w", key, r, n, err)
	}
	return n, nil
}

// header checks that an object is what its name and place say.
func (c check) header(h segment.Header, export bool, first, last uint64) string {
	switch {
	case export && (h.Kind != segment.KindExport || h.LastSeq != first):
		return fmt.Sprintf("the header says %v at seq %d..%d, the name an export at %d: misnamed or corrupt", h.Kind, h.FirstSeq, h.LastSeq, first)
	case !export && (h.Kind != segment.KindSegment || h.FirstSeq != first || h.LastSeq != last):
		return fmt.Sprintf("the header says %v %d..%d, the name a segment %d..%d: misnamed or corrupt", h.Kind, h.FirstSeq, h.LastSeq, first, last)
	case h.Generation != c.gen:
		return fmt.Sprintf("the header says generation %s, but it is stored under %s", h.Generation, c.gen)
	case c.metaOK && c.meta.DBIdentity != "" && h.DBIdentity != c.meta.DBIdentity:
		return fmt.Sprintf("comes from the store with DB identity %s, but generation.json says %s: it belongs to another store", h.DBIdentity, c.meta.DBIdentity)
	}
	return ""
}

// trimKey drops the leading "segment KEY: " (or "KEY ") of an error,
// since the problem is printed after the key already.
func trimKey(err error, key string) string {
	msg := err.Error()
	for _, p := range []string{"segment " + key, "export " + key, "object " + key, key} {
		if rest, ok := strings.CutPrefix(msg, p); ok && rest != "" {
			return strings.TrimPrefix(strings.TrimPrefix(rest, ":"), " ")
		}
	}
	return msg
}

// overlappingSegments marks the segments whose range intersects another's
// (segments are sorted by first sequence number).
func overlappingSegments(segs []layout.Segment) map[string]bool {
	out := map[string]bool{}
	for i := range segs {
		for j := i + 1; j < len(segs) && segs[j].First <= segs[i].Last; j++ {
			out[segs[i].Key], out[segs[j].Key] = true, true
		}
	}
	return out
}

// chain reports the holes in g's chain. A hole at the head of the newest
// generation, before an export that arrived ahead of the segments leading
// to it, may be a running tailer's upload order: a warning.
func (v *verifier) chain(g layout.Generation, newest bool) {
	for _, h := range g.Holes() {
		where := fmt.Sprintf("after %s", h.Before)
		if h.After != "" {
			where += fmt.Sprintf(", before %s", h.After)
		}
		impact := "restores past it are impossible"
		if h.Bridged {
			impact = "a later export bridges it, but no restore can reach a sequence number inside it"
		}
		obj := h.After
		if obj == "" {
			obj = h.Before
		}
		if newest && h.After == "" {
			v.warn(g.ID, obj, "no segment holds sequence numbers %d..%d yet (%s): a running tailer may still be shipping them", h.First, h.Last, where)
			continue
		}
		v.problem(g.ID, obj, "no segment holds sequence numbers %d..%d (%s): the chain has a hole; %s", h.First, h.Last, where, impact)
	}
}

// overlaps checks that segments covering the same sequence numbers hold
// the same batches there (restore may read either).
func (v *verifier) overlaps(g layout.Generation, results []objResult) {
	byKey := map[string]objResult{}
	for _, r := range results {
		byKey[r.key] = r
	}
	segs := g.Segments
	for i := range segs {
		for j := i + 1; j < len(segs) && segs[j].First <= segs[i].Last; j++ {
			a, b := byKey[segs[i].Key], byKey[segs[j].Key]
			if a.problem != "" || b.problem != "" {
				continue // already reported; its batches are unknown
			}
			lo, hi := max(segs[i].First, segs[j].First), min(segs[i].Last, segs[j].Last)
			if msg := compareBatches(within(a.batches, lo, hi), within(b.batches, lo, hi)); msg != "" {
				v.problem(g.ID, segs[j].Key, "overlaps %s on sequence numbers %d..%d, but the two disagree: %s", segs[i].Key, lo, hi, msg)
			}
		}
	}
}

// within returns the batches that touch [lo, hi].
func within(bs []batchSum, lo, hi uint64) []batchSum {
	var out []batchSum
	for _, b := range bs {
		if b.last >= lo && b.seq <= hi {
			out = append(out, b)
		}
	}
	return out
}

func compareBatches(a, b []batchSum) string {
	for i := 0; i < min(len(a), len(b)); i++ {
		x, y := a[i], b[i]
		switch {
		case x.seq != y.seq || x.last != y.last:
			return fmt.Sprintf("one has the batch %d..%d where the other has %d..%d", x.seq, x.last, y.seq, y.last)
		case x.sum != y.sum:
			return fmt.Sprintf("the batch %d..%d has different bytes", x.seq, x.last)
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("one holds %d batches there, the other %d", len(a), len(b))
	}
	return ""
}

// deep restores g from each export to the next one's sequence, comparing
// with the later export's digests, and from the newest export to the
// newest sequence its chain reaches. A restore that would read an object
// found damaged is skipped: that object is reported already, and restore
// would only report it again.
func (v *verifier) deep(ctx context.Context, g layout.Generation, results []objResult, log *slog.Logger) []DeepResult {
	bad := map[string]bool{}
	trailers := map[string]segment.Trailer{}
	for _, r := range results {
		switch {
		case r.problem != "":
			bad[r.key] = true
		case r.export:
			trailers[r.key] = r.trailer
		}
	}
	usable := func(base layout.Export, seq uint64) bool {
		if bad[base.Key] {
			return false
		}
		chain, err := g.Chain(base.Seq, seq)
		if err != nil {
			return false // a hole: reported by chain
		}
		for _, s := range chain {
			if bad[s.Key] {
				return false
			}
		}
		return true
	}
	var out []DeepResult
	run := func(base layout.Export, seq uint64, against *layout.Export) {
		dir := filepath.Join(v.tmp, fmt.Sprintf("deep-%d", len(out)))
		defer os.RemoveAll(dir)
		defer os.RemoveAll(dir + ".work")
		dr := DeepResult{Base: base.Seq, Seq: seq}
		obj := base.Key
		if against != nil {
			dr.Against, obj = against.Key, against.Key
		}
		log.Info("deep: restoring", "base_export_seq", base.Seq, "seq", seq)
		res, err := restore.Run(ctx, restore.Options{
			Replica: v.opts.Replica, To: dir, Work: dir + ".work", Digests: true,
			Target: restore.Target{Generation: g.ID, Seq: seq, HasSeq: true, Base: base.Seq, HasBase: true},
		})
		dr.Batches = res.Batches
		switch {
		case err != nil:
			v.problem(g.ID, obj, "deep: restore from the export at %d to %d failed: %v", base.Seq, seq, err)
		case res.ExportSeq != base.Seq || res.Seq != seq || res.Partial:
			v.problem(g.ID, obj, "deep: restore from the export at %d to %d ended from %d at %d: %s", base.Seq, seq, res.ExportSeq, res.Seq, res.Note)
		case against != nil:
			if msg := compareDigests(res.Families, trailers[against.Key].Families); msg != "" {
				v.problem(g.ID, obj, "deep: replaying from the export at %d to %d does not give this export's state: %s", base.Seq, seq, msg)
				break
			}
			dr.OK = true
		default:
			dr.OK = true
		}
		out = append(out, dr)
	}
	exps := g.Exports
	for i := 1; i < len(exps) && ctx.Err() == nil; i++ {
		if !usable(exps[i-1], exps[i].Seq) {
			continue
		}
		var against *layout.Export
		if _, ok := trailers[exps[i].Key]; ok {
			against = &exps[i]
		}
		run(exps[i-1], exps[i].Seq, against)
	}
	for i := len(exps) - 1; i >= 0 && ctx.Err() == nil; i-- {
		if reach := g.Reach(exps[i].Seq); usable(exps[i], reach) {
			run(exps[i], reach, nil)
			break
		}
	}
	return out
}

// compareDigests compares a restored store's digests with an export's.
func compareDigests(got, want []segment.FamilySum) string {
	have := map[string]segment.FamilySum{}
	for _, f := range got {
		have[f.Name] = f
	}
	var names []string
	for _, w := range want {
		g := have[w.Name]
		if g.Keys != w.Keys || (w.Keys > 0 && g.Digest != w.Digest) {
			return fmt.Sprintf("family %s has %d keys (digest %.12s), the export recorded %d (digest %.12s)", w.Name, g.Keys, g.Digest, w.Keys, w.Digest)
		}
		names = append(names, w.Name)
		delete(have, w.Name)
	}
	var extra []string
	for name, f := range have {
		if f.Keys > 0 {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		return fmt.Sprintf("families %v hold keys the export has no family for", extra)
	}
	return ""
}
