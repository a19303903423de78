package segment

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// Test helpers shared by the tests, the fuzz target and the benchmarks.

var testCreated = time.Date(2026, 11, 22, 21, 30, 0, 123456789, time.UTC)

func testFamilies() []Family {
	return []Family{
		{ID: 0, Name: "default"},
		{ID: 3, Name: "t", MergeOperator: "merge"},
		{ID: 7, Name: "l"},
	}
}

func segHeader(first, last uint64) Header {
	return Header{
		Generation: "20261122T213000Z-3f9a1c",
		DBIdentity: "9b1c2f1e-1111-4a4a-8c8c-0123456789ab",
		FirstSeq:   first,
		LastSeq:    last,
		Created:    testCreated,
		Families:   testFamilies(),
	}
}

func expHeader(seq uint64, fams []Family) Header {
	h := segHeader(seq, seq)
	h.Families = fams
	return h
}

// wbatch returns a fake WriteBatch rep: the 12-byte header then payload.
func wbatch(seq uint64, count uint32, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, seq)
	b = binary.LittleEndian.AppendUint32(b, count)
	return append(b, payload...)
}

type entry struct {
	fam        int
	key, value []byte
}

func writeSegment(tb testing.TB, h Header, batches []Batch, labels []ChangeLabel, opts ...WriterOption) ([]byte, Trailer) {
	tb.Helper()
	var buf bytes.Buffer
	w, err := NewSegmentWriter(&buf, h, opts...)
	if err != nil {
		tb.Fatalf("NewSegmentWriter: %v", err)
	}
	for _, b := range batches {
		if err := w.Append(b); err != nil {
			tb.Fatalf("Append(seq %d): %v", b.Seq, err)
		}
	}
	if labels != nil {
		w.SetLabels(labels)
	}
	tr, err := w.Close()
	if err != nil {
		tb.Fatalf("Close: %v", err)
	}
	if w.Written() != int64(buf.Len()) {
		tb.Fatalf("Written() = %d, buffer has %d", w.Written(), buf.Len())
	}
	return buf.Bytes(), tr
}

func writeExport(tb testing.TB, h Header, entries []entry, accounts map[uint32]uint64, opts ...WriterOption) ([]byte, Trailer) {
	tb.Helper()
	var buf bytes.Buffer
	w, err := NewExportWriter(&buf, h, opts...)
	if err != nil {
		tb.Fatalf("NewExportWriter: %v", err)
	}
	for _, e := range entries {
		if err := w.Add(e.fam, e.key, e.value); err != nil {
			tb.Fatalf("Add(%d, %x): %v", e.fam, e.key, err)
		}
	}
	if accounts != nil {
		w.SetAccountChanges(accounts)
	}
	tr, err := w.Close()
	if err != nil {
		tb.Fatalf("Close: %v", err)
	}
	if w.Written() != int64(buf.Len()) {
		tb.Fatalf("Written() = %d, buffer has %d", w.Written(), buf.Len())
	}
	return buf.Bytes(), tr
}

func openBytes(b []byte, name string) (*Reader, error) {
	return Open(bytes.NewReader(b), int64(len(b)), name)
}

// readAll opens b and reads every record with Next*, returning the first
// error other than io.EOF.
func readAll(b []byte) (batches []Batch, entries []entry, err error) {
	r, err := openBytes(b, "x")
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	for {
		if r.Header().Kind == KindSegment {
			var bt Batch
			if bt, err = r.NextBatch(); err == nil {
				batches = append(batches, bt)
				continue
			}
		} else {
			var e entry
			if e.fam, e.key, e.value, err = r.NextEntry(); err == nil {
				entries = append(entries, e)
				continue
			}
		}
		if err == io.EOF {
			return batches, entries, nil
		}
		return nil, nil, err
	}
}

// smallSegment and smallExport are the files the exhaustive truncation and
// corruption tests walk over, byte by byte.
func smallSegment(tb testing.TB) []byte {
	b, _ := writeSegment(tb, segHeader(100, 200), []Batch{
		{Seq: 100, CaptureUnixMs: 1700000000000, Data: wbatch(100, 2, []byte("put k1 v1 put k2 v2"))},
		{Seq: 102, CaptureUnixMs: 1700000000500, Data: wbatch(102, 1, []byte("delete k1"))},
		{Seq: 150, CaptureUnixMs: 1700000000400, Data: wbatch(150, 0, nil)},
	}, []ChangeLabel{{Account: 1, Collection: 2, MinChange: 10, MaxChange: 12}})
	return b
}

func smallExport(tb testing.TB) []byte {
	b, _ := writeExport(tb, expHeader(500, testFamilies()), []entry{
		{0, []byte("a"), []byte("1")},
		{0, []byte("b"), nil},
		{2, nil, []byte("empty key")},
		{2, []byte("z"), []byte("last")},
	}, map[uint32]uint64{1: 99})
	return b
}

// randomBatches returns n batches of realistic-looking, compressible data.
func randomBatches(seed uint64, first uint64, n, size int) []Batch {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]Batch, n)
	seq := first
	for i := range out {
		var p []byte
		for len(p) < size {
			p = fmt.Appendf(p, "\x01\x03acct/%d/mail/%08d{\"subject\":\"hello %d\",\"size\":%d}",
				rng.IntN(50), rng.IntN(1e6), rng.IntN(1000), rng.IntN(1e5))
		}
		count := uint32(1 + rng.IntN(5))
		out[i] = Batch{Seq: seq, CaptureUnixMs: 1700000000000 + int64(i)*7, Data: wbatch(seq, count, p[:size])}
		seq += uint64(count)
	}
	return out
}

// randomEntries returns n sorted entries spread over the families.
func randomEntries(seed uint64, nfam, n, valueSize int) []entry {
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]entry, n)
	for i := range out {
		fam := i * nfam / n
		v := make([]byte, 0, valueSize)
		for len(v) < valueSize {
			v = fmt.Appendf(v, "value-%d-%d;", rng.IntN(1000), i)
		}
		out[i] = entry{fam: fam, key: fmt.Appendf(nil, "key/%010d", i), value: v[:valueSize]}
	}
	return out
}

// build assembles an object from its parts with every checksum correct, so
// tests can feed the reader semantically wrong content that a corrupted
// byte could never produce with valid checksums.
type parts struct {
	magic   string
	version uint16
	header  map[string]any // header JSON
	body    []byte         // uncompressed
	trailer map[string]any // trailer JSON; checksums and lengths filled in unless present
	// stored, when not nil, is the body as stored (instead of body
	// compressed by the test's encoder), e.g. a hand-made zstd frame.
	stored []byte
	// padding, when positive, appends a skippable frame with that many
	// bytes to the stored body, as writers do to respect the ratio cap.
	padding int
}

func (p parts) build(tb testing.TB) []byte {
	tb.Helper()
	hp, err := json.Marshal(p.header)
	if err != nil {
		tb.Fatal(err)
	}
	hdr := []byte(p.magic)
	hdr = binary.LittleEndian.AppendUint16(hdr, p.version)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(hp)))
	hdr = append(hdr, hp...)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	body := enc.EncodeAll(p.body, nil)
	if p.stored != nil {
		body = p.stored
	}
	if p.padding > 0 {
		body = append(body[:len(body):len(body)], skippable(p.padding)...)
	}
	tj := map[string]any{
		"uncompressed_len":    len(p.body),
		"body_xxhash64":       fmt.Sprintf("%016x", xxhash.Sum64(p.body)),
		"header_xxhash64":     fmt.Sprintf("%016x", xxhash.Sum64(hdr)),
		"compressed_xxhash64": fmt.Sprintf("%016x", xxhash.Sum64(body)),
	}
	for k, v := range p.trailer {
		tj[k] = v
	}
	tp, err := json.Marshal(tj)
	if err != nil {
		tb.Fatal(err)
	}
	out := append(hdr, body...)
	out = append(out, tp...)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(body)))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(tp)))
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(tp, crc32.MakeTable(crc32.Castagnoli)))
	return append(out, EndMagic...)
}

func segParts(body []byte, records int, trailer map[string]any) parts {
	tr := map[string]any{"records": records, "min_capture_unix_ms": 5, "max_capture_unix_ms": 5}
	for k, v := range trailer {
		tr[k] = v
	}
	return parts{
		magic: SegmentMagic, version: 1,
		header: map[string]any{"kind": "segment", "generation": "g", "db_identity": "id", "first_seq": 10, "last_seq": 20,
			"created": "2026-01-01T00:00:00Z", "families": []any{map[string]any{"id": 0, "name": "default"}}, "compression": 1, "encryption": 0},
		body: body, trailer: tr,
	}
}

// segRecord encodes one segment record by hand (independently of the writer).
func segRecord(seq uint64, capture int64, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(capture))
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

func expRecord(fam uint64, key, value []byte) []byte {
	b := binary.AppendUvarint(nil, fam)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}

func expParts(body []byte, sums []any, trailer map[string]any) parts {
	tr := map[string]any{"families": sums}
	records := 0
	for _, s := range sums {
		records += s.(map[string]any)["keys"].(int)
	}
	tr["records"] = records
	for k, v := range trailer {
		tr[k] = v
	}
	return parts{
		magic: ExportMagic, version: 1,
		header: map[string]any{"kind": "export", "generation": "g", "db_identity": "id", "first_seq": 10, "last_seq": 10,
			"created": "2026-01-01T00:00:00Z", "families": []any{
				map[string]any{"id": 0, "name": "default"}, map[string]any{"id": 1, "name": "t"}},
			"compression": 1, "encryption": 0},
		body: body, trailer: tr,
	}
}
