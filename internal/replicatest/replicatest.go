// Package replicatest builds small, real replicas for tests of restore,
// verify and the CLI: a RocksDB primary written with Stalwart-like
// transactions (puts, counter merges, changelog entries, range deletes),
// its WAL batches sealed into segments and full exports taken at chosen
// points, exactly as `tailer run` lays them out. It records the primary's
// per-family digests after every transaction, so a test can prove that a
// restore (partial or not) equals the source at the sequence it reports.
//
// Tests then damage the replica on purpose (Flip, Truncate, Delete,
// Replace) to check that nothing reads a damaged object as good.
package replicatest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/changelog"
	"github.com/tailer-backup/tailer/export"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// Spec describes one generation to build.
type Spec struct {
	Generation string // default: 20261122T213000.000Z-000001, then ...001Z-000002, ...
	// Tx is the number of transactions (one WriteBatch each, 2 to 4
	// records, so sequence numbers advance by more than one per batch).
	Tx int
	// ExportsAfter lists after how many transactions to take a full export
	// (0: before the first). Default: {0}, only the base export.
	ExportsAfter []int
	// PerSegment is how many batches go into one segment (default 4).
	PerSegment int
	// NoMeta leaves generation.json out.
	NoMeta bool
	// Start is the capture time of the first batch (default 2026-11-22
	// 21:30 UTC); each later batch is captured one second after the one
	// before, and an export at the time of the last batch before it.
	Start time.Time
	// Blobs makes the primary a Stalwart with a filesystem blob store:
	// every transaction also stores a blob (family k: its commit key and a
	// document link of account 7), every fourth one expunges and purges
	// the blob of two transactions before (links and commit key deleted);
	// each blob is uploaded to blobs/ and each export gets its blob
	// manifest, as tailer run ships them. BlobsAt and BlobFiles record
	// what a restore must bring back.
	Blobs bool
}

// Replica is a built replica.
type Replica struct {
	Dir        string // the file:// replica's directory
	URL        string
	R          uploader.Replica
	Generation string
	Exports    []layout.Export  // in sequence order
	Segments   []layout.Segment // in sequence order
	// Batches are every batch in order, with the segment holding each.
	Batches []Batch
	// States maps a sequence number reached after a whole transaction (and
	// each export's) to the primary's per-family digests at that point.
	States map[uint64][]segment.FamilySum
	Meta   layout.Meta
	// BlobsAt maps every sequence number of States to the blobs the
	// primary references there (with Spec.Blobs), sorted; BlobFiles holds
	// each blob's file as Stalwart wrote it.
	BlobsAt   map[uint64][]blobfs.Hash
	BlobFiles map[blobfs.Hash][]byte
	gens      int // generations built
}

// Batch is one shipped batch.
type Batch struct {
	segment.Batch
	Last    uint64 // its last sequence number
	Segment string // key of the segment holding it
}

// Build writes a replica under a new temp dir: one generation per spec,
// all from the same primary (so sequence numbers keep growing).
func Build(t testing.TB, spec Spec) *Replica {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "replica")
	url := "file://" + dir
	r, err := uploader.Open(context.Background(), url, uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := &Replica{Dir: dir, URL: url, R: r, States: map[uint64][]segment.FamilySum{},
		BlobsAt: map[uint64][]blobfs.Hash{}, BlobFiles: map[blobfs.Hash][]byte{}}
	rep.add(t, spec)
	return rep
}

// AddGeneration writes one more generation into the replica, from a new
// primary (its sequence numbers start over, as after a replaced store).
// The Replica's fields then describe the new generation.
func (rep *Replica) AddGeneration(t testing.TB, spec Spec) {
	t.Helper()
	rep.Exports, rep.Segments, rep.Batches = nil, nil, nil
	rep.States = map[uint64][]segment.FamilySum{}
	rep.add(t, spec)
}

// WriteExport writes an export at seq holding exactly entries (family
// name -> key -> value) with valid checksums and digests: a well-formed
// object whose content need not be the source's state at seq.
func (rep *Replica) WriteExport(t testing.TB, seq uint64, entries map[string]map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	ew, err := segment.NewExportWriter(&buf, segment.Header{Generation: rep.Generation, DBIdentity: rep.Meta.DBIdentity,
		FirstSeq: seq, LastSeq: seq, Created: rep.Meta.Created, Families: rep.Meta.Families})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range rep.Meta.Families {
		keys := make([]string, 0, len(entries[f.Name]))
		for k := range entries[f.Name] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := ew.Add(i, []byte(k), []byte(entries[f.Name][k])); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	key := layout.ExportKey(rep.Generation, seq)
	rep.put(t, key, buf.Bytes())
	return key
}

// BatchesOf returns the batches a segment of the built replica holds.
func (rep *Replica) BatchesOf(key string) []segment.Batch {
	var out []segment.Batch
	for _, b := range rep.Batches {
		if b.Segment == key {
			out = append(out, b.Batch)
		}
	}
	return out
}

func (rep *Replica) put(t testing.TB, key string, b []byte) {
	t.Helper()
	if err := rep.R.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

func (rep *Replica) add(t testing.TB, spec Spec) {
	t.Helper()
	ctx := context.Background()
	if spec.Generation == "" { // ids sort by creation, as tailer's do
		spec.Generation = fmt.Sprintf("20261122T213000.%03dZ-%06d", rep.gens, rep.gens+1)
	}
	rep.gens++
	if spec.ExportsAfter == nil {
		spec.ExportsAfter = []int{0}
	}
	if spec.PerSegment <= 0 {
		spec.PerSegment = 4
	}
	if spec.Start.IsZero() {
		spec.Start = time.Date(2026, 11, 22, 21, 30, 0, 0, time.UTC)
	}
	gen := spec.Generation
	rep.Generation = gen
	families := []string{"n", "l", "p"}
	if spec.Blobs {
		families = append(families, bloblink.Family)
	}
	st, err := store.OpenWritable(filepath.Join(t.TempDir(), "primary"), families, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fams := st.FamilyTable()
	const identity = "replicatest-identity"
	rep.Meta = layout.Meta{ID: gen, Created: spec.Start, Reason: "first run against this replica", DBIdentity: identity, Families: fams}

	capture := spec.Start.UnixMilli()
	exportAt := func(tx int) {
		seq := st.DB.GetLatestSequenceNumber()
		var buf bytes.Buffer
		hdr := segment.Header{Generation: gen, DBIdentity: identity, Created: time.UnixMilli(capture).UTC()}
		if _, err := export.Write(ctx, st, seq, hdr, &buf, nil); err != nil {
			t.Fatalf("export after tx %d: %v", tx, err)
		}
		key := layout.ExportKey(gen, seq)
		rep.put(t, key, buf.Bytes())
		rep.Exports = append(rep.Exports, layout.Export{Object: layout.Object{Key: key, Size: int64(buf.Len())}, Seq: seq})
		rep.States[seq] = digests(t, st)
		if spec.Blobs {
			rep.BlobsAt[seq] = rep.blobsIn(t, st)
			m, err := blobship.EncodeManifest(rep.BlobsAt[seq])
			if err != nil {
				t.Fatal(err)
			}
			rep.put(t, layout.BlobManifestKey(gen, seq), m)
		}
		if tx == 0 {
			rep.Meta.BaseSeq = seq
		}
	}
	lID, _ := changelog.FamilyID(fams)
	var pending []segment.Batch
	seal := func() {
		if len(pending) == 0 {
			return
		}
		first := pending[0].Seq
		last := lastSeq(pending[len(pending)-1])
		key := layout.SegmentKey(gen, first, last)
		var buf bytes.Buffer
		sw, err := segment.NewSegmentWriter(&buf, segment.Header{Generation: gen, DBIdentity: identity,
			FirstSeq: first, LastSeq: last, Created: time.UnixMilli(capture).UTC(), Families: fams})
		if err != nil {
			t.Fatal(err)
		}
		lb := changelog.NewLabeler(lID)
		for _, b := range pending {
			if err := lb.Add(b); err != nil {
				t.Fatal(err)
			}
			if err := sw.Append(b); err != nil {
				t.Fatal(err)
			}
			rep.Batches = append(rep.Batches, Batch{Batch: b, Last: lastSeq(b), Segment: key})
		}
		sw.SetLabels(lb.Labels())
		if _, err := sw.Close(); err != nil {
			t.Fatal(err)
		}
		rep.put(t, key, buf.Bytes())
		rep.Segments = append(rep.Segments, layout.Segment{Object: layout.Object{Key: key, Size: int64(buf.Len())}, First: first, Last: last})
		pending = nil
	}
	if !spec.NoMeta {
		raw, err := layout.EncodeMeta(rep.Meta)
		if err != nil {
			t.Fatal(err)
		}
		rep.put(t, layout.MetaKey(gen), raw)
	}
	exports := map[int]bool{}
	for _, n := range spec.ExportsAfter {
		exports[n] = true
	}
	if exports[0] {
		exportAt(0)
	}
	for i := 1; i <= spec.Tx; i++ {
		capture += 1000
		var extra func(*grocksdb.WriteBatch)
		if spec.Blobs {
			extra = rep.blobTx(t, st, i)
		}
		pending = append(pending, write(t, st, i, capture, extra))
		rep.States[st.DB.GetLatestSequenceNumber()] = digests(t, st)
		if spec.Blobs {
			rep.BlobsAt[st.DB.GetLatestSequenceNumber()] = rep.blobsIn(t, st)
		}
		if len(pending) == spec.PerSegment {
			seal()
		}
		if exports[i] {
			exportAt(i)
		}
	}
	seal()
}

// write applies transaction i to the primary and returns it as the WAL
// batch tailer would have shipped.
func write(t testing.TB, st *store.Store, i int, capture int64, extra func(*grocksdb.WriteBatch)) segment.Batch {
	t.Helper()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	wb.PutCF(st.Handle("p"), fmt.Appendf(nil, "doc-%04d", i), fmt.Appendf(nil, "value %d", i))
	wb.MergeCF(st.Handle("n"), []byte("counter"), stalwart.EncodeCounter(int64(i)))
	key := changelog.EncodeKey(changelog.Key{Account: 7, Collection: changelog.Email, ChangeID: uint64(i)})
	wb.PutCF(st.Handle("l"), key, changelog.EncodeChangeSet(changelog.ChangeSet{ItemInserts: []uint64{uint64(i)}}))
	if i%5 == 0 {
		wb.DeleteRangeCF(st.Handle("p"), []byte("doc-"), fmt.Appendf(nil, "doc-%04d", i-3))
	}
	if extra != nil {
		extra(wb)
	}
	seq := st.DB.GetLatestSequenceNumber() + 1
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	if err := st.DB.Write(wo, wb); err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(wb.Data())
	binary.LittleEndian.PutUint64(data[0:8], seq) // as the WAL holds it
	return segment.Batch{Seq: seq, CaptureUnixMs: capture, Data: data}
}

// BlobPayload is the content of the blob transaction i stores.
func BlobPayload(i int) []byte {
	return fmt.Appendf(nil, "From: a@example.org\r\nSubject: message %d\r\n\r\n%s", i, bytes.Repeat([]byte("body "), 50+i))
}

// blobTx returns what transaction i adds with Spec.Blobs: it stores
// BlobPayload(i) (its file written and shipped first, as Stalwart and
// tailer do) and links it to document i of account 7; every fourth also
// expunges the message of transaction i-2 and purges its blob's keys.
func (rep *Replica) blobTx(t testing.TB, st *store.Store, i int) func(*grocksdb.WriteBatch) {
	t.Helper()
	payload := BlobPayload(i)
	h := blobfs.Sum(payload)
	file := blobfs.Encode(payload, i%2 == 0)
	rep.BlobFiles[h] = file
	enc, err := blobship.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	rep.put(t, layout.BlobKey(h), enc.Encode(file))
	k := st.Handle(bloblink.Family)
	return func(wb *grocksdb.WriteBatch) {
		if i == 1 {
			wb.PutCF(st.Handle("p"), []byte{0}, []byte{0, 0, 0, 6}) // Stalwart's schema version, for --format stalwart
		}
		wb.PutCF(k, bloblink.CommitKey(h), nil)
		wb.PutCF(k, bloblink.DocumentKey(h, 7, 0, uint32(i)), nil)
		if i%4 == 0 && i > 2 {
			old := blobfs.Sum(BlobPayload(i - 2))
			wb.DeleteCF(k, bloblink.DocumentKey(old, 7, 0, uint32(i-2)))
			wb.DeleteCF(k, bloblink.CommitKey(old))
		}
	}
}

// blobsIn lists the blobs st references now (required ones), sorted.
func (rep *Replica) blobsIn(t testing.TB, st *store.Store) []blobfs.Hash {
	t.Helper()
	refs, _, err := bloblink.Read(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []blobfs.Hash
	for _, r := range refs {
		if r.Required(0) {
			out = append(out, r.Hash)
		}
	}
	return out
}

func lastSeq(b segment.Batch) uint64 { return b.Seq + uint64(b.Count()) - 1 }

func digests(t testing.TB, st *store.Store) []segment.FamilySum {
	t.Helper()
	d, err := st.Digests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Path is the file holding key.
func (rep *Replica) Path(key string) string { return filepath.Join(rep.Dir, filepath.FromSlash(key)) }

// Flip inverts one byte of the object at offset off (negative: from the
// end), the way a bad disk or a bit flip in transit damages it.
func (rep *Replica) Flip(t testing.TB, key string, off int64) {
	t.Helper()
	b := rep.read(t, key)
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0xff
	rep.write(t, key, b)
}

// Truncate cuts the object to n bytes (negative: drop -n from the end).
func (rep *Replica) Truncate(t testing.TB, key string, n int64) {
	t.Helper()
	b := rep.read(t, key)
	if n < 0 {
		n += int64(len(b))
	}
	rep.write(t, key, b[:n])
}

// Delete removes the object.
func (rep *Replica) Delete(t testing.TB, key string) {
	t.Helper()
	if err := rep.R.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}

// Replace overwrites the object with b.
func (rep *Replica) Replace(t testing.TB, key string, b []byte) {
	t.Helper()
	rep.write(t, key, b)
}

// Read returns the object's bytes.
func (rep *Replica) Read(t testing.TB, key string) []byte { t.Helper(); return rep.read(t, key) }

func (rep *Replica) read(t testing.TB, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(rep.Path(key))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (rep *Replica) write(t testing.TB, key string, b []byte) {
	t.Helper()
	if err := os.WriteFile(rep.Path(key), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// FutureVersion returns the object's bytes with the format version
// raised to v: what a newer tailer would write. (Its header checksum no
// longer matches, but readers check the version first.)
func FutureVersion(b []byte, v uint16) []byte {
	out := bytes.Clone(b)
	binary.LittleEndian.PutUint16(out[8:10], v)
	return out
}

// SealSegment writes batches as a segment named first..last (which need
// not match the batches: tests break chains on purpose) and returns its
// key.
func (rep *Replica) SealSegment(t testing.TB, first, last uint64, batches []segment.Batch) string {
	t.Helper()
	var buf bytes.Buffer
	sw, err := segment.NewSegmentWriter(&buf, segment.Header{Generation: rep.Generation, DBIdentity: rep.Meta.DBIdentity,
		FirstSeq: first, LastSeq: last, Created: rep.Meta.Created, Families: rep.Meta.Families})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := sw.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	key := layout.SegmentKey(rep.Generation, first, last)
	rep.put(t, key, buf.Bytes())
	return key
}

// StateAt returns the primary's digests at seq, failing the test if seq
// is not a transaction boundary.
func (rep *Replica) StateAt(t testing.TB, seq uint64) []segment.FamilySum {
	t.Helper()
	d, ok := rep.States[seq]
	if !ok {
		t.Fatalf("no recorded state at sequence %d", seq)
	}
	return d
}

// Inflate keeps the header of the segment obj and replaces its body by a
// hand-made zstd frame: one record at seq whose batch is a WriteBatch
// header and zeros zero bytes, in RLE blocks (4 bytes per 128 KiB). The
// trailer states the true uncompressed length and record count, with a
// valid CRC, so only the format's limits can stop it: a small hostile
// object (zeros of 256 MiB take 8 KiB) for tests of memory bounds.
func Inflate(t testing.TB, obj []byte, seq uint64, zeros uint64) []byte {
	t.Helper()
	hlen := binary.LittleEndian.Uint32(obj[10:14])
	hdrEnd := 14 + int(hlen)
	foot := obj[len(obj)-24:]
	tlen := int(binary.LittleEndian.Uint32(foot[8:12]))
	var tj map[string]any
	if err := json.Unmarshal(obj[len(obj)-24-tlen:len(obj)-24], &tj); err != nil {
		t.Fatal(err)
	}
	batch := binary.LittleEndian.AppendUint64(nil, seq) // WriteBatch header
	batch = binary.LittleEndian.AppendUint32(batch, 1)
	rec := binary.LittleEndian.AppendUint64(nil, seq)
	rec = binary.LittleEndian.AppendUint64(rec, 5)
	rec = binary.AppendUvarint(rec, uint64(len(batch))+zeros)
	rec = append(rec, batch...)

	body := []byte{0x28, 0xB5, 0x2F, 0xFD, 0x00, 10 << 3} // frame header, 1 MiB window
	block := func(last bool, typ byte, size int) {
		h := uint32(size)<<3 | uint32(typ)<<1
		if last {
			h |= 1
		}
		body = append(body, byte(h), byte(h>>8), byte(h>>16))
	}
	block(false, 0, len(rec))
	body = append(body, rec...)
	for left := zeros; left > 0; {
		n := min(left, 128<<10)
		left -= n
		block(left == 0, 1, int(n))
		body = append(body, 0)
	}
	tj["records"] = 1
	tj["uncompressed_len"] = uint64(len(rec)) + zeros
	tj["min_capture_unix_ms"], tj["max_capture_unix_ms"] = 5, 5
	tp, err := json.Marshal(tj)
	if err != nil {
		t.Fatal(err)
	}
	out := append(slices.Clip(obj[:hdrEnd]), body...)
	out = append(out, tp...)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(body)))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(tp)))
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(tp, crc32.MakeTable(crc32.Castagnoli)))
	return append(out, segment.EndMagic...)
}
