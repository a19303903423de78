package stalwartfmt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/durable"
	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/internal/store"
)

// Options tune a dump (WriteDump).
type Options struct {
	// Log receives warnings (linked blobs missing from family t, blob
	// values without a marker, families the layout does not name) and a
	// line per finished subspace. Nil discards them.
	Log *slog.Logger
	// Progress, if set, is called about every ProgressEvery while the
	// dump is written, and once at the end.
	Progress func(Progress)
	// ProgressEvery is the interval between Progress calls (default 5 s).
	ProgressEvery time.Duration
	// Blobs, if set, supplies the linked blobs family t does not hold: a
	// Stalwart whose blob store is outside RocksDB (a filesystem blob
	// store), as Stalwart's own export reads them through its blob store.
	Blobs BlobSource
}

// BlobSource supplies blobs kept outside the store (dumpsource.BlobDir,
// dumpsource.ReplicaBlobs).
type BlobSource interface {
	// Blob returns the blob's file as Stalwart's blob store holds it (the
	// payload and a marker byte, the encoding of family t's values),
	// checked against hash; ok is false when the source has no good copy.
	Blob(ctx context.Context, hash blobfs.Hash) (file []byte, ok bool, err error)
}

// Progress is the running state of a dump being written.
type Progress struct {
	Subspace byte   // the subspace being written
	Files    int    // files finished
	Records  uint64 // records written so far, all files
	Raw      int64  // key+value bytes written so far
	Written  int64  // file bytes written so far
	Elapsed  time.Duration
}

// FileStats is one file of a finished dump.
type FileStats struct {
	Subspace byte
	Name     string
	Records  uint64
	Raw      int64 // key+value bytes (blobs decompressed)
	Bytes    int64 // file size
}

// Summary is what a finished dump reports.
type Summary struct {
	Dir     string
	Seq     uint64 // the source sequence number the files equal
	Schema  uint32
	Files   []FileStats // in write order
	Records uint64
	Raw     int64
	Bytes   int64
	// MissingBlobs counts hashes linked in k with no value in t and none
	// in Options.Blobs (skipped, as Stalwart's export does).
	MissingBlobs uint64
	// SourcedBlobs counts blobs read from Options.Blobs.
	SourcedBlobs uint64
	// UnmarkedBlobs counts t values whose last byte is no known marker
	// (written as they are, as Stalwart's export does).
	UnmarkedBlobs uint64
	// Ignored lists families on disk that the layout neither exports nor
	// knows Stalwart skips.
	Ignored []string
	Elapsed time.Duration
}

// WriteDump writes a Stalwart dump of st into out, as of seq (the
// source sequence number st's content equals; it is reported, not read).
// st must not change while the dump is written: a frozen snapshot
// (snapshot.OpenFrozen) or a store opened read-only, so every subspace is
// read at the same point (Stalwart's own export reads each subspace with
// its own iterator on the live store, at different moments).
//
// out must not exist or be an empty directory: Stalwart imports every file
// of the directory it is given, so nothing else may be there. The files are
// written to a hidden staging directory beside out and renamed into place
// only when all are complete and synced; a failed dump leaves no out.
func WriteDump(ctx context.Context, st *store.Store, seq uint64, out string, opts Options) (Summary, error) {
	start := time.Now()
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sum := Summary{Dir: out, Seq: seq}
	schema, err := ReadSchema(st)
	if err != nil {
		return sum, err
	}
	layout, err := LayoutFor(schema)
	if err != nil {
		return sum, err
	}
	sum.Schema = schema
	for _, f := range st.Families {
		if len(f.Name) == 1 {
			if _, ok := layout.Lookup(f.Name[0]); ok || layout.IsSkipped(f.Name[0]) {
				continue
			}
		}
		if f.Name != "default" {
			sum.Ignored = append(sum.Ignored, f.Name)
		}
	}
	if len(sum.Ignored) > 0 {
		log.Warn("families not in Stalwart's export layout for this schema are left out", "schema", schema, "families", sum.Ignored)
	}
	if err := CheckOut(out); err != nil {
		return sum, err
	}
	stage, err := os.MkdirTemp(filepath.Dir(filepath.Clean(out)), "."+filepath.Base(out)+".partial-")
	if err != nil {
		return sum, fmt.Errorf("create staging directory beside %s: %w", out, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(stage)
		}
	}()

	e := &dumper{ctx: ctx, st: st, schema: schema, log: log, opts: opts, start: start, last: start}
	if e.opts.ProgressEvery <= 0 {
		e.opts.ProgressEvery = 5 * time.Second
	}
	e.ro = grocksdb.NewDefaultReadOptions()
	defer e.ro.Destroy()
	e.ro.SetFillCache(false)
	lower, upper := iterBounds()
	e.ro.SetIterateLowerBound(lower)
	e.ro.SetIterateUpperBound(upper)
	e.get = grocksdb.NewDefaultReadOptions()
	defer e.get.Destroy()
	e.get.SetFillCache(false)

	for _, sub := range layout.Exported {
		fs, err := e.writeFile(filepath.Join(stage, sub.FileName()), sub)
		if err != nil {
			return sum, err
		}
		sum.Files = append(sum.Files, fs)
		sum.Records += fs.Records
		sum.Raw += fs.Raw
		sum.Bytes += fs.Bytes
		log.Info("subspace written", "subspace", string(sub.Letter), "records", fs.Records, "bytes", fs.Bytes)
	}
	sum.MissingBlobs, sum.UnmarkedBlobs, sum.SourcedBlobs = e.missing, e.unmarked, e.sourced
	if e.missing > 0 {
		log.Warn("blobs linked in family k have no value in family t (nor in the blob store given) and were left out (as Stalwart's export does); if Stalwart's blob store is not this RocksDB (S3, filesystem), those blobs stay there",
			"missing", e.missing)
	}
	if e.unmarked > 0 {
		log.Warn("blob values without a known marker byte were written as stored (as Stalwart's export does)", "count", e.unmarked)
	}
	if err := durable.SyncDir(stage); err != nil {
		return sum, err
	}
	if err := placeStage(stage, out); err != nil {
		return sum, err
	}
	done = true
	sum.Elapsed = time.Since(start)
	if opts.Progress != nil {
		opts.Progress(e.progress(0))
	}
	return sum, nil
}

// ReadSchema reads Stalwart's schema version from family p, key 0x00.
func ReadSchema(st *store.Store) (uint32, error) {
	h := st.Handle(string(PropertySubspace))
	if h == nil {
		return 0, errors.New("the store has no family p, so no schema version: is it Stalwart's store?")
	}
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	v, err := st.DB.GetPinnedCF(ro, h, []byte{0})
	if err != nil {
		return 0, fmt.Errorf("read the schema version (family p, key 0x00): %w", err)
	}
	defer v.Destroy()
	if !v.Exists() {
		return 0, errors.New("the store has no schema version (family p, key 0x00): Stalwart writes it on first start; is this Stalwart's store?")
	}
	return ParseSchemaVersion(v.Data())
}

// CheckOut refuses an output directory that exists and is not empty.
func CheckOut(out string) error {
	if out == "" {
		return &setting.Error{Key: "Out", Name: "output directory", Before: "no ", After: " given"}
	}
	entries, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output directory %s: %w", out, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("output directory %s is not empty: Stalwart's --import reads every file in it, so write the dump into a new or empty directory", out)
	}
	return nil
}

// placeStage renames the finished staging directory to out (removing an
// empty out first) and syncs the parent so the rename is durable.
func placeStage(stage, out string) error {
	if err := CheckOut(out); err != nil {
		return err
	}
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace empty %s: %w", out, err)
	}
	if err := os.Rename(stage, out); err != nil {
		return fmt.Errorf("move the finished dump into %s: %w", out, err)
	}
	return durable.SyncDir(filepath.Dir(filepath.Clean(out)))
}

type dumper struct {
	ctx     context.Context
	st      *store.Store
	schema  uint32
	log     *slog.Logger
	opts    Options
	ro, get *grocksdb.ReadOptions

	start, last time.Time
	files       int
	records     uint64
	raw         int64
	written     int64 // finished files' bytes
	cur         *FileWriter
	missing     uint64
	unmarked    uint64
	sourced     uint64
}

func (e *dumper) progress(sub byte) Progress {
	p := Progress{Subspace: sub, Files: e.files, Records: e.records, Raw: e.raw, Written: e.written, Elapsed: time.Since(e.start)}
	if e.cur != nil {
		p.Records += e.cur.Records
		p.Raw += e.cur.Raw
		p.Written += e.cur.Written()
	}
	return p
}

// tick checks for cancellation and reports progress when it is due; it is
// called every few thousand records.
func (e *dumper) tick(sub byte) error {
	if err := e.ctx.Err(); err != nil {
		return err
	}
	if e.opts.Progress != nil && time.Since(e.last) >= e.opts.ProgressEvery {
		e.last = time.Now()
		e.opts.Progress(e.progress(sub))
	}
	return nil
}

// writeFile writes one subspace file, synced and closed.
func (e *dumper) writeFile(path string, sub Subspace) (FileStats, error) {
	fs := FileStats{Subspace: sub.Letter, Name: sub.FileName()}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fs, fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	fw, err := NewFileWriter(bw, sub.Letter, e.schema)
	if err != nil {
		return fs, err
	}
	e.cur = fw
	defer func() { e.cur = nil }()
	if sub.Blobs {
		err = e.blobs(fw, sub)
	} else {
		err = e.copyFamily(fw, sub)
	}
	if err != nil {
		return fs, err
	}
	if err := fw.Close(); err != nil {
		return fs, fmt.Errorf("subspace %c: %w", sub.Letter, err)
	}
	if err := bw.Flush(); err != nil {
		return fs, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fs, fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fs, fmt.Errorf("close %s: %w", path, err)
	}
	fs.Records, fs.Raw, fs.Bytes = fw.Records, fw.Raw, fw.Written()
	e.files++
	e.records += fs.Records
	e.raw += fs.Raw
	e.written += fs.Bytes
	return fs, nil
}

// copyFamily copies one family's keys (and values, unless key only) in key
// order within Stalwart's iteration range. A family the store lacks gives
// an empty file, as Stalwart (which creates every family) would write.
func (e *dumper) copyFamily(fw *FileWriter, sub Subspace) error {
	h := e.st.Handle(string(sub.Letter))
	if h == nil {
		e.log.Debug("family absent from the store: empty file", "subspace", string(sub.Letter))
		return nil
	}
	it := e.st.DB.NewIteratorCF(e.ro, h)
	defer it.Close()
	n := 0
	for it.SeekToFirst(); it.Valid(); it.Next() {
		var err error
		if sub.KeyOnly {
			err = fw.Add(it.Key().Data(), nil)
		} else {
			err = fw.Add(it.Key().Data(), it.Value().Data())
		}
		if err != nil {
			return fmt.Errorf("write subspace %c: %w", sub.Letter, err)
		}
		if n++; n%4096 == 0 {
			if err := e.tick(sub.Letter); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read family %c: %w", sub.Letter, err)
	}
	return nil
}

// blobs writes one record per distinct blob hash linked in family k (the
// first 32 bytes of each link key), in hash order, with the blob read from
// family t and decoded (DecodeBlob). Blobs with no link are not in the dump.
func (e *dumper) blobs(fw *FileWriter, sub Subspace) error {
	links, blobs := e.st.Handle(string(BlobLinkSubspace)), e.st.Handle(string(sub.Letter))
	if links == nil {
		return nil
	}
	it := e.st.DB.NewIteratorCF(e.ro, links)
	defer it.Close()
	var last []byte
	n := 0
	for it.SeekToFirst(); it.Valid(); it.Next() {
		key := it.Key().Data()
		if len(key) < hashLen {
			return fmt.Errorf("blob link key %x in family k is %d bytes, shorter than a %d-byte blob hash (Stalwart's export fails on it too)", key, len(key), hashLen)
		}
		if last != nil && bytes.Equal(last, key[:hashLen]) {
			continue
		}
		last = append(last[:0], key[:hashLen]...)
		if err := e.blob(fw, blobs, last); err != nil {
			return err
		}
		if n++; n%256 == 0 {
			if err := e.tick(sub.Letter); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read family k: %w", err)
	}
	return nil
}

func (e *dumper) blob(fw *FileWriter, blobs *grocksdb.ColumnFamilyHandle, hash []byte) error {
	if blobs == nil {
		file, ok, err := e.fromSource(hash)
		if err != nil || !ok {
			return err
		}
		return e.add(fw, hash, file)
	}
	v, err := e.st.DB.GetPinnedCF(e.get, blobs, hash)
	if err != nil {
		return fmt.Errorf("read blob %x from family t: %w", hash, err)
	}
	defer v.Destroy()
	value := v.Data()
	if !v.Exists() {
		file, ok, err := e.fromSource(hash)
		if err != nil || !ok {
			return err
		}
		value = file
	}
	return e.add(fw, hash, value)
}

// add decodes and writes one blob (a value of family t, or a file of the
// blob source).
func (e *dumper) add(fw *FileWriter, hash, file []byte) error {
	data, unmarked, err := DecodeBlob(file)
	if err != nil {
		return fmt.Errorf("blob %x: %w", hash, err)
	}
	if unmarked {
		e.unmarked++
	}
	if err := fw.Add(hash, data); err != nil {
		return fmt.Errorf("write blob %x: %w", hash, err)
	}
	return nil
}

// fromSource reads a blob family t does not hold from Options.Blobs;
// without one, or when it has none, the blob is counted missing.
func (e *dumper) fromSource(hash []byte) ([]byte, bool, error) {
	if e.opts.Blobs != nil {
		file, ok, err := e.opts.Blobs.Blob(e.ctx, blobfs.Hash(hash))
		if err != nil {
			return nil, false, fmt.Errorf("read blob %x from the blob store: %w", hash, err)
		}
		if ok {
			e.sourced++
			return file, true, nil
		}
	}
	e.missing++
	e.log.Debug("linked blob not in family t nor in the blob store", "hash", fmt.Sprintf("%x", hash), "name", blobfs.KeyName(hash))
	return nil, false, nil
}

// SortedFiles returns the summary's files ordered by subspace letter, for
// printing.
func (s Summary) SortedFiles() []FileStats {
	out := append([]FileStats(nil), s.Files...)
	sort.Slice(out, func(i, j int) bool { return out[i].Subspace < out[j].Subspace })
	return out
}
