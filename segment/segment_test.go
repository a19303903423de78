package segment

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/v1-* (only when the format version changes)")

// openAndVerify is what a careful restore does: Open, then Verify.
func openAndVerify(b []byte, name string) error {
	r, err := openBytes(b, name)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Verify()
}

func TestSegmentRoundTrip(t *testing.T) {
	big := randomBatches(1, 1000, 1, 3<<20+17) // larger than the read chunk
	tests := []struct {
		name    string
		h       Header
		batches []Batch
		labels  []ChangeLabel
	}{
		{name: "empty", h: segHeader(5, 5)},
		{name: "one batch", h: segHeader(7, 7), batches: []Batch{{Seq: 7, CaptureUnixMs: -3, Data: wbatch(7, 1, nil)}}},
		{name: "many batches", h: segHeader(1, 1<<40), batches: randomBatches(2, 1, 500, 300)},
		{name: "big batch", h: segHeader(1000, 1000), batches: big},
		{name: "labels", h: segHeader(1, 100), batches: randomBatches(3, 1, 10, 50), labels: []ChangeLabel{
			{Account: 9, Collection: 1, MinChange: 5, MaxChange: 5},
			{Account: 1, Collection: 7, MinChange: 1, MaxChange: 1 << 62},
			{Account: 1, Collection: 2, MinChange: 0, MaxChange: 3},
		}},
		{name: "no families, zero time, max seq", h: Header{FirstSeq: 0, LastSeq: ^uint64(0)},
			batches: []Batch{{Seq: 0, Data: wbatch(0, 0, nil)}, {Seq: ^uint64(0), CaptureUnixMs: 1, Data: wbatch(^uint64(0), 1, []byte{0})}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, wtr := writeSegment(t, tc.h, tc.batches, tc.labels)
			r, err := openBytes(b, "seg")
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			if err := r.Verify(); err != nil {
				t.Fatalf("Verify before reading: %v", err)
			}
			checkHeader(t, r.Header(), tc.h, KindSegment)
			if got := r.Trailer(); !reflect.DeepEqual(got, wtr) {
				t.Errorf("trailer read back\n%+v\nwritten\n%+v", got, wtr)
			}
			tr := r.Trailer()
			if tr.Records != uint64(len(tc.batches)) {
				t.Errorf("Records = %d, want %d", tr.Records, len(tc.batches))
			}
			if len(tc.labels) > 0 {
				want := append([]ChangeLabel(nil), tc.labels...)
				// Written sorted by (account, collection).
				want[0], want[1], want[2] = tc.labels[2], tc.labels[1], tc.labels[0]
				if !reflect.DeepEqual(tr.Labels, want) {
					t.Errorf("labels = %+v, want %+v", tr.Labels, want)
				}
			}
			var minC, maxC int64
			for i, bt := range tc.batches {
				if i == 0 || bt.CaptureUnixMs < minC {
					minC = bt.CaptureUnixMs
				}
				if i == 0 || bt.CaptureUnixMs > maxC {
					maxC = bt.CaptureUnixMs
				}
			}
			if tr.MinCaptureUnixMs != minC || tr.MaxCaptureUnixMs != maxC {
				t.Errorf("capture range %d..%d, want %d..%d", tr.MinCaptureUnixMs, tr.MaxCaptureUnixMs, minC, maxC)
			}
			for i, want := range tc.batches {
				got, err := r.NextBatch()
				if err != nil {
					t.Fatalf("NextBatch %d: %v", i, err)
				}
				if got.Seq != want.Seq || got.CaptureUnixMs != want.CaptureUnixMs || !bytes.Equal(got.Data, want.Data) {
					t.Fatalf("batch %d = seq %d capture %d len %d, want seq %d capture %d len %d",
						i, got.Seq, got.CaptureUnixMs, len(got.Data), want.Seq, want.CaptureUnixMs, len(want.Data))
				}
				if got.Count() != want.Count() {
					t.Fatalf("batch %d count %d, want %d", i, got.Count(), want.Count())
				}
			}
			for range 2 {
				if _, err := r.NextBatch(); err != io.EOF {
					t.Fatalf("NextBatch at end = %v, want io.EOF", err)
				}
			}
			if err := r.Verify(); err != nil {
				t.Fatalf("Verify after reading: %v", err)
			}
		})
	}
}

func checkHeader(t *testing.T, got, in Header, kind Kind) {
	t.Helper()
	if got.Kind != kind || got.Version != FormatVersion || got.Generation != in.Generation || got.DBIdentity != in.DBIdentity ||
		got.FirstSeq != in.FirstSeq || got.LastSeq != in.LastSeq || !got.Created.Equal(in.Created) ||
		got.Compression != CompressionZstd || got.Encryption != EncryptionNone || !reflect.DeepEqual(got.Families, in.Families) {
		t.Errorf("header read back\n%+v\nwritten\n%+v", got, in)
	}
}

func TestExportRoundTrip(t *testing.T) {
	many := randomEntries(4, 3, 3000, 100)
	tests := []struct {
		name     string
		fams     []Family
		entries  []entry
		accounts map[uint32]uint64
	}{
		{name: "no families"},
		{name: "families without keys", fams: testFamilies()},
		{name: "middle family empty", fams: testFamilies(), entries: []entry{
			{0, []byte("a"), []byte("x")}, {2, []byte("a"), []byte("y")}}},
		{name: "empty key and value", fams: testFamilies()[:1], entries: []entry{
			{0, nil, nil}, {0, []byte{0}, nil}, {0, []byte{0, 0}, []byte{}}}},
		{name: "many keys", fams: testFamilies(), entries: many},
		{name: "big value", fams: testFamilies()[:2], entries: []entry{
			{1, []byte("blob"), bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+1)},
			{1, bytes.Repeat([]byte{0xff}, 300), []byte("long key")}}},
		{name: "account changes", fams: testFamilies(), entries: many[:10],
			accounts: map[uint32]uint64{0: 1, 7: 1 << 63, ^uint32(0): 42}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := expHeader(1234, tc.fams)
			b, wtr := writeExport(t, h, tc.entries, tc.accounts)
			r, err := openBytes(b, "exp")
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			checkHeader(t, r.Header(), h, KindExport)
			tr := r.Trailer()
			if !reflect.DeepEqual(tr, wtr) {
				t.Errorf("trailer read back\n%+v\nwritten\n%+v", tr, wtr)
			}
			if !reflect.DeepEqual(tr.AccountChanges, tc.accounts) {
				t.Errorf("account changes = %v, want %v", tr.AccountChanges, tc.accounts)
			}
			// Independent computation of every family's count and digest.
			if len(tr.Families) != len(tc.fams) {
				t.Fatalf("%d family sums for %d families", len(tr.Families), len(tc.fams))
			}
			for i, f := range tc.fams {
				var keys int
				var kvs [][2][]byte
				for _, e := range tc.entries {
					if e.fam == i {
						keys++
						kvs = append(kvs, [2][]byte{e.key, e.value})
					}
				}
				want := FamilySum{Name: f.Name, Keys: uint64(keys), Digest: refDigest(kvs)}
				if tr.Families[i] != want {
					t.Errorf("family %d sum = %+v, want %+v", i, tr.Families[i], want)
				}
			}
			if _, err := r.NextBatch(); !errors.Is(err, ErrKind) {
				t.Errorf("NextBatch on an export = %v, want ErrKind", err)
			}
			for i, want := range tc.entries {
				fam, k, v, err := r.NextEntry()
				if err != nil {
					t.Fatalf("NextEntry %d: %v", i, err)
				}
				if fam != want.fam || !bytes.Equal(k, want.key) || !bytes.Equal(v, want.value) {
					t.Fatalf("entry %d = (%d, %x, %d bytes), want (%d, %x, %d bytes)", i, fam, k, len(v), want.fam, want.key, len(want.value))
				}
				if i == 0 {
					// Returned slices are the caller's: appending to the key
					// must not overwrite the value.
					k = append(k, "junk"...)
					_ = k
					if !bytes.Equal(v, want.value) {
						t.Fatalf("appending to the key changed the value")
					}
				}
			}
			for range 2 {
				if _, _, _, err := r.NextEntry(); err != io.EOF {
					t.Fatalf("NextEntry at end = %v, want io.EOF", err)
				}
			}
			if err := r.Verify(); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// refVarint is an independent uvarint encoder (LEB128), so the digest test
// does not reuse encoding/binary the way the implementation does.
func refVarint(n int) []byte {
	var b []byte
	for n >= 0x80 {
		b = append(b, byte(n&0x7f|0x80))
		n >>= 7
	}
	return append(b, byte(n))
}

func refDigest(kvs [][2][]byte) string {
	var msg []byte
	for _, kv := range kvs {
		msg = append(msg, refVarint(len(kv[0]))...)
		msg = append(msg, kv[0]...)
		msg = append(msg, refVarint(len(kv[1]))...)
		msg = append(msg, kv[1]...)
	}
	s := sha256.Sum256(msg)
	return hex.EncodeToString(s[:])
}

func TestDigestDefinition(t *testing.T) {
	long := bytes.Repeat([]byte("k"), 200) // two-byte length
	tests := []struct {
		name string
		kvs  [][2][]byte
		want string // "" = only compare with refDigest
	}{
		{name: "nothing", want: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		// sha256 of 01 'a' 01 'b'
		{name: "a=b", kvs: [][2][]byte{{[]byte("a"), []byte("b")}}, want: hex.EncodeToString(func() []byte {
			s := sha256.Sum256([]byte{1, 'a', 1, 'b'})
			return s[:]
		}())},
		{name: "empty key and value", kvs: [][2][]byte{{nil, nil}}},
		{name: "long key", kvs: [][2][]byte{{long, []byte("v")}, {append(long, 0), bytes.Repeat([]byte{1}, 20000)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDigest()
			for _, kv := range tc.kvs {
				d.Add(kv[0], kv[1])
			}
			got := d.Sum()
			if ref := refDigest(tc.kvs); got != ref {
				t.Errorf("Sum = %s, independent computation %s", got, ref)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("Sum = %s, want %s", got, tc.want)
			}
			if d.Keys() != uint64(len(tc.kvs)) {
				t.Errorf("Keys = %d, want %d", d.Keys(), len(tc.kvs))
			}
			if d.Sum() != got {
				t.Errorf("Sum is not idempotent")
			}
		})
	}
	a, b := NewDigest(), NewDigest()
	a.Add([]byte("ab"), []byte("c"))
	b.Add([]byte("a"), []byte("bc"))
	if a.Sum() == b.Sum() {
		t.Errorf("moving a byte from key to value does not change the digest")
	}
}

func TestTruncation(t *testing.T) {
	for name, b := range map[string][]byte{"segment": smallSegment(t), "export": smallExport(t)} {
		t.Run(name, func(t *testing.T) {
			for n := 0; n < len(b); n++ {
				err := openAndVerify(b[:n], "trunc")
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("truncated to %d of %d bytes: err = %v, want ErrCorrupt", n, len(b), err)
				}
				if !strings.Contains(err.Error(), "trunc") {
					t.Fatalf("error does not name the object: %v", err)
				}
			}
			// A ReaderAt shorter than the size it was opened with.
			for _, n := range []int{len(b) / 2, len(b) - 1} {
				r, err := Open(bytes.NewReader(b[:n]), int64(len(b)), "short")
				if err == nil {
					err = r.Verify()
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("reader with %d of %d bytes: err = %v, want ErrCorrupt", n, len(b), err)
				}
			}
		})
	}
}

func TestCorruptionEveryByte(t *testing.T) {
	for name, b := range map[string][]byte{"segment": smallSegment(t), "export": smallExport(t)} {
		t.Run(name, func(t *testing.T) {
			if err := openAndVerify(b, "ok"); err != nil {
				t.Fatalf("intact file: %v", err)
			}
			for pos := range b {
				for _, mask := range []byte{0x01, 0x80, 0xff} {
					c := bytes.Clone(b)
					c[pos] ^= mask
					err := openAndVerify(c, "bad.obj")
					if err == nil {
						t.Fatalf("flipping byte %d with %#x: Open+Verify succeeded", pos, mask)
					}
					if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
						t.Fatalf("flipping byte %d with %#x: %v is neither ErrCorrupt nor ErrVersion", pos, mask, err)
					}
					if !strings.Contains(err.Error(), "bad.obj") {
						t.Fatalf("error does not name the object: %v", err)
					}
					if _, _, err := readAll(c); err == nil {
						t.Fatalf("flipping byte %d with %#x: reading to io.EOF succeeded", pos, mask)
					}
				}
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	seg := smallSegment(t)
	name := "generations/g/segments/" + SegmentName(100, 200)

	t.Run("future version", func(t *testing.T) {
		for _, v := range []uint16{2, 0xffff} {
			c := bytes.Clone(seg)
			binary.LittleEndian.PutUint16(c[8:], v)
			// A future version may change everything after the version.
			for i := 10; i < len(c); i++ {
				c[i] = 0xee
			}
			_, err := openBytes(c, name)
			if !errors.Is(err, ErrVersion) {
				t.Fatalf("version %d: %v, want ErrVersion", v, err)
			}
			want := fmt.Sprintf("segment %s was written by format version %d; this tailer reads version 1: upgrade tailer", name, v)
			if err.Error() != want {
				t.Errorf("got  %q\nwant %q", err, want)
			}
		}
	})
	t.Run("wrong magic", func(t *testing.T) {
		c := bytes.Clone(seg)
		copy(c, "PK\x03\x04....")
		_, err := openBytes(c, name)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "object "+name+": bytes 0..8 are") {
			t.Errorf("wrong magic: %v", err)
		}
	})
	t.Run("body checksum", func(t *testing.T) {
		// A well-formed zstd body with different content: only the body
		// checksum can notice.
		p := segParts(segRecord(12, 5, wbatch(12, 1, nil)), 1, nil)
		b := p.build(t)
		good := openAndVerify(b, name)
		if good != nil {
			t.Fatalf("hand-built segment: %v", good)
		}
		p.trailer["body_xxhash64"] = "0123456789abcdef"
		err := openAndVerify(p.build(t), name)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v", err)
		}
		msg := err.Error()
		for _, want := range []string{"segment " + name + ": body checksum mismatch over bytes ", "want 0123456789abcdef, got ",
			"the object is corrupt; restore it from another replica or re-export"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
		if e.Start <= 0 || e.End <= e.Start || !strings.Contains(msg, fmt.Sprintf("bytes %d..%d", e.Start, e.End)) {
			t.Errorf("range %d..%d not in %q", e.Start, e.End, msg)
		}
	})
	t.Run("kind", func(t *testing.T) {
		r, err := openBytes(seg, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := r.NextEntry(); !errors.Is(err, ErrKind) || !strings.Contains(err.Error(), name) {
			t.Errorf("NextEntry on a segment: %v", err)
		}
	})
}

// failingReaderAt fails every read past a point, like a dropped connection.
type failingReaderAt struct {
	b     []byte
	after int64
	err   error
}

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.after {
		return 0, f.err
	}
	return copy(p, f.b[off:]), nil
}

func TestStorageErrorIsNotCorruption(t *testing.T) {
	b, _ := writeSegment(t, segHeader(1, 1000), randomBatches(5, 1, 200, 500), nil)
	boom := errors.New("connection reset")
	for _, after := range []int64{0, 100, int64(len(b) / 2)} {
		r, err := Open(failingReaderAt{b, after, boom}, int64(len(b)), "s")
		if err == nil {
			err = r.Verify()
		}
		if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
			t.Errorf("read failing after %d: err = %v, want the storage error and not ErrCorrupt", after, err)
		}
	}
}

// TestReaderChecks feeds the reader objects with valid checksums but
// content the writer would never produce; each must be rejected. The valid
// cases check that objects built by hand from the documented layout read.
func TestReaderChecks(t *testing.T) {
	// 50-byte records, so the trailer's records-per-byte sanity check passes
	// and the body checks themselves are exercised.
	rec := func(seq uint64, capture int64) []byte {
		return segRecord(seq, capture, wbatch(seq, 1, []byte("twenty bytes of data")))
	}
	sum := func(name string, keys int, kvs ...[2][]byte) any {
		return map[string]any{"name": name, "keys": keys, "digest": refDigest(kvs)}
	}
	kv := func(k, v string) [2][]byte { return [2][]byte{[]byte(k), []byte(v)} }
	withHeader := func(p parts, k string, v any) parts { p.header[k] = v; return p }
	tooLong := cat(binary.LittleEndian.AppendUint64(nil, 12), binary.LittleEndian.AppendUint64(nil, 5), binary.AppendUvarint(nil, 1<<40), wbatch(12, 1, nil))

	tests := []struct {
		name string
		p    parts
		ok   bool
	}{
		{name: "valid segment", p: segParts(cat(rec(10, 5), rec(20, 5)), 2, nil), ok: true},
		{name: "valid empty segment", p: segParts(nil, 0, map[string]any{"min_capture_unix_ms": 0, "max_capture_unix_ms": 0}), ok: true},
		{name: "valid with unknown JSON members", p: withHeader(segParts(rec(10, 5), 1, map[string]any{"future": 1}), "future", "x"), ok: true},
		{name: "seq below range", p: segParts(rec(9, 5), 1, nil)},
		{name: "seq above range", p: segParts(rec(21, 5), 1, nil)},
		{name: "seq repeated", p: segParts(cat(rec(12, 5), rec(12, 5)), 2, nil)},
		{name: "seq decreasing", p: segParts(cat(rec(13, 5), rec(12, 5)), 2, nil)},
		{name: "batch shorter than header", p: segParts(cat(segRecord(12, 5, make([]byte, 11)), []byte{0}), 1, nil)},
		{name: "batch length beyond body", p: segParts(tooLong, 1, nil)},
		{name: "varint overflow", p: segParts(cat(rec(12, 5)[:16], bytes.Repeat([]byte{0xff}, 13)), 1, nil)},
		{name: "varint overflows 64 bits", p: segParts(cat(rec(12, 5)[:16], bytes.Repeat([]byte{0xff}, 9), []byte{0x7f, 0, 0, 0}), 1, nil)},
		{name: "record cut by uncompressed_len", p: segParts(cat(rec(12, 5), rec(13, 5)), 2, map[string]any{"uncompressed_len": 80})},
		{name: "more records than trailer", p: segParts(cat(rec(12, 5), rec(13, 5)), 1, nil)},
		{name: "fewer records than trailer", p: segParts(cat(rec(12, 5), rec(13, 5)), 3, nil)},
		{name: "capture range wrong", p: segParts(rec(12, 6), 1, nil)},
		{name: "capture without records", p: segParts(nil, 0, nil)},
		{name: "capture missing", p: segParts(rec(12, 5), 1, map[string]any{"min_capture_unix_ms": nil})},
		{name: "capture min after max", p: segParts(rec(12, 5), 1, map[string]any{"min_capture_unix_ms": 6})},
		{name: "labels unsorted", p: segParts(rec(12, 5), 1, map[string]any{"labels": []any{
			map[string]any{"account": 2, "collection": 0, "min_change": 1, "max_change": 1},
			map[string]any{"account": 1, "collection": 0, "min_change": 1, "max_change": 1}}})},
		{name: "label min after max", p: segParts(rec(12, 5), 1, map[string]any{"labels": []any{
			map[string]any{"account": 2, "collection": 0, "min_change": 2, "max_change": 1}}})},
		{name: "bad checksum text", p: segParts(rec(12, 5), 1, map[string]any{"body_xxhash64": "XYZ"})},
		{name: "version 0", p: func() parts { p := segParts(rec(12, 5), 1, nil); p.version = 0; return p }()},
		{name: "magic and kind disagree", p: withHeader(segParts(rec(12, 5), 1, nil), "kind", "export")},
		{name: "compression 2", p: withHeader(segParts(rec(12, 5), 1, nil), "compression", 2)},
		{name: "encrypted", p: withHeader(segParts(rec(12, 5), 1, nil), "encryption", 1)},
		{name: "bad created", p: withHeader(segParts(rec(12, 5), 1, nil), "created", "yesterday")},
		{name: "first after last", p: withHeader(segParts(rec(12, 5), 1, nil), "first_seq", 30)},
		{name: "duplicate family", p: withHeader(segParts(rec(12, 5), 1, nil), "families", []any{
			map[string]any{"id": 0, "name": "a"}, map[string]any{"id": 1, "name": "a"}})},
		{name: "header not JSON", p: withHeader(segParts(rec(12, 5), 1, nil), "families", "nope")},

		{name: "valid export", ok: true, p: expParts(cat(expRecord(0, []byte("a"), []byte("1")), expRecord(0, []byte("b"), nil), expRecord(1, nil, []byte("2"))),
			[]any{sum("default", 2, kv("a", "1"), kv("b", "")), sum("t", 1, kv("", "2"))}, map[string]any{"account_changes": map[string]any{"5": 6}})},
		{name: "valid empty export", ok: true, p: expParts(nil, []any{sum("default", 0), sum("t", 0)}, nil)},
		{name: "keys out of order", p: expParts(cat(expRecord(0, []byte("b"), nil), expRecord(0, []byte("a"), nil)),
			[]any{sum("default", 2, kv("b", ""), kv("a", "")), sum("t", 0)}, nil)},
		{name: "duplicate key", p: expParts(cat(expRecord(0, []byte("a"), nil), expRecord(0, []byte("a"), nil)),
			[]any{sum("default", 2, kv("a", ""), kv("a", "")), sum("t", 0)}, nil)},
		{name: "family decreases", p: expParts(cat(expRecord(1, []byte("a"), nil), expRecord(0, []byte("b"), nil)),
			[]any{sum("default", 1, kv("b", "")), sum("t", 1, kv("a", ""))}, nil)},
		{name: "family out of range", p: expParts(expRecord(2, []byte("a"), nil), []any{sum("default", 1, kv("a", "")), sum("t", 0)}, nil)},
		{name: "digest wrong", p: expParts(expRecord(0, []byte("a"), []byte("1")), []any{sum("default", 1, kv("a", "2")), sum("t", 0)}, nil)},
		{name: "key count wrong", p: expParts(cat(expRecord(0, []byte("a"), nil), expRecord(1, []byte("a"), nil)),
			[]any{sum("default", 2, kv("a", "")), sum("t", 0)}, nil)},
		{name: "records disagree with family keys", p: expParts(expRecord(0, []byte("a"), nil), []any{sum("default", 1, kv("a", "")), sum("t", 0)},
			map[string]any{"records": 2})},
		{name: "family sum missing", p: expParts(nil, []any{sum("default", 0)}, nil)},
		{name: "family sum renamed", p: expParts(nil, []any{sum("default", 0), sum("x", 0)}, nil)},
		{name: "digest not hex", p: expParts(nil, []any{sum("default", 0), map[string]any{"name": "t", "keys": 0, "digest": "zz"}}, nil)},
		{name: "value length beyond body", p: expParts(cat(binary.AppendUvarint(nil, 0), binary.AppendUvarint(nil, 1), []byte("a"), binary.AppendUvarint(nil, 1<<50)),
			[]any{sum("default", 1), sum("t", 0)}, nil)},
		{name: "account change key not a number", p: expParts(nil, []any{sum("default", 0), sum("t", 0)}, map[string]any{"account_changes": map[string]any{"x": 1}})},
		{name: "export first != last", p: withHeader(expParts(nil, []any{sum("default", 0), sum("t", 0)}, nil), "last_seq", 11)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.p.build(t)
			err := openAndVerify(b, "hand")
			_, _, rerr := readAll(b)
			if tc.ok {
				if err != nil || rerr != nil {
					t.Fatalf("Verify: %v; reading: %v", err, rerr)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Verify = %v, want ErrCorrupt", err)
			}
			if !errors.Is(rerr, ErrCorrupt) {
				t.Fatalf("reading = %v, want ErrCorrupt", rerr)
			}
			t.Log(err)
		})
	}
}

func TestWriterRejects(t *testing.T) {
	var sink bytes.Buffer
	newSeg := func(t *testing.T) *SegmentWriter {
		w, err := NewSegmentWriter(&sink, segHeader(10, 20))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	newExp := func(t *testing.T) *ExportWriter {
		w, err := NewExportWriter(&sink, expHeader(10, testFamilies()))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	b := func(seq uint64) Batch { return Batch{Seq: seq, Data: wbatch(seq, 1, nil)} }

	segTests := []struct {
		name  string
		first []Batch
		bad   Batch
	}{
		{"seq equal", []Batch{b(12)}, b(12)},
		{"seq lower", []Batch{b(12)}, b(11)},
		{"seq below header range", nil, b(9)},
		{"seq above header range", nil, b(21)},
		{"data shorter than WriteBatch header", nil, Batch{Seq: 12, Data: make([]byte, 11)}},
		{"nil data", nil, Batch{Seq: 12}},
	}
	for _, tc := range segTests {
		t.Run("segment/"+tc.name, func(t *testing.T) {
			w := newSeg(t)
			for _, x := range tc.first {
				if err := w.Append(x); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Append(tc.bad); err == nil {
				t.Fatalf("Append(seq %d) accepted", tc.bad.Seq)
			}
			// A rejected batch writes nothing: the writer stays usable.
			if _, err := w.Close(); err != nil {
				t.Fatalf("Close after a rejected Append: %v", err)
			}
		})
	}

	type add struct {
		fam int
		key string
	}
	expTests := []struct {
		name  string
		first []add
		bad   add
	}{
		{"key equal", []add{{0, "a"}}, add{0, "a"}},
		{"key lower", []add{{0, "b"}}, add{0, "a"}},
		{"key prefix lower", []add{{0, "ab"}}, add{0, "a"}},
		{"empty key after key", []add{{0, "a"}}, add{0, ""}},
		{"family decreases", []add{{1, "a"}}, add{0, "b"}},
		{"family out of range", nil, add{3, "a"}},
		{"negative family", nil, add{-1, "a"}},
	}
	for _, tc := range expTests {
		t.Run("export/"+tc.name, func(t *testing.T) {
			w := newExp(t)
			for _, x := range tc.first {
				if err := w.Add(x.fam, []byte(x.key), nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Add(tc.bad.fam, []byte(tc.bad.key), nil); err == nil {
				t.Fatalf("Add(%d, %q) accepted", tc.bad.fam, tc.bad.key)
			}
			if _, err := w.Close(); err != nil {
				t.Fatalf("Close after a rejected Add: %v", err)
			}
		})
	}

	hdr := func(f func(*Header)) Header { h := segHeader(10, 20); f(&h); return h }
	badHeaders := []struct {
		name string
		h    Header
		exp  bool
	}{
		{"export first != last", segHeader(10, 20), true},
		{"first after last", segHeader(21, 20), false},
		{"kind mismatch", hdr(func(h *Header) { h.Kind = KindExport }), false},
		{"future version", hdr(func(h *Header) { h.Version = 2 }), false},
		{"unknown compression", hdr(func(h *Header) { h.Compression = 2 }), false},
		{"encryption", hdr(func(h *Header) { h.Encryption = 1 }), false},
		{"duplicate family name", hdr(func(h *Header) { h.Families = []Family{{ID: 1, Name: "a"}, {ID: 2, Name: "a"}} }), false},
		{"duplicate family id", hdr(func(h *Header) { h.Families = []Family{{ID: 1, Name: "a"}, {ID: 1, Name: "b"}} }), false},
		{"empty family name", hdr(func(h *Header) { h.Families = []Family{{ID: 1}} }), false},
		{"invalid UTF-8", hdr(func(h *Header) { h.Generation = "g\xff" }), false},
		{"year 10000", hdr(func(h *Header) { h.Created = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), false},
	}
	for _, tc := range badHeaders {
		t.Run("header/"+tc.name, func(t *testing.T) {
			var out bytes.Buffer
			var err error
			if tc.exp {
				_, err = NewExportWriter(&out, tc.h)
			} else {
				_, err = NewSegmentWriter(&out, tc.h)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if out.Len() != 0 {
				t.Errorf("%d bytes written for a rejected header", out.Len())
			}
		})
	}

	t.Run("duplicate labels", func(t *testing.T) {
		w := newSeg(t)
		w.SetLabels([]ChangeLabel{{Account: 1, Collection: 1}, {Account: 1, Collection: 1}})
		if _, err := w.Close(); err == nil {
			t.Fatal("Close accepted duplicate labels")
		}
	})
	t.Run("label min after max", func(t *testing.T) {
		w := newSeg(t)
		w.SetLabels([]ChangeLabel{{Account: 1, MinChange: 2, MaxChange: 1}})
		if _, err := w.Close(); err == nil {
			t.Fatal("Close accepted a label with min > max")
		}
	})
	t.Run("use after close", func(t *testing.T) {
		w := newSeg(t)
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Append(b(12)); err == nil {
			t.Error("Append after Close accepted")
		}
		if _, err := w.Close(); err == nil {
			t.Error("second Close accepted")
		}
		e := newExp(t)
		if _, err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if err := e.Add(0, []byte("a"), nil); err == nil {
			t.Error("Add after Close accepted")
		}
	})
	t.Run("destination error is sticky", func(t *testing.T) {
		boom := errors.New("disk full")
		fw := &failWriter{left: 1000, err: boom}
		w, err := NewSegmentWriter(fw, segHeader(1, 1<<30))
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		for _, bt := range randomBatches(6, 1, 2000, 200) {
			if werr = w.Append(bt); werr != nil {
				break
			}
		}
		if werr == nil {
			_, werr = w.Close()
		}
		if !errors.Is(werr, boom) {
			t.Fatalf("err = %v, want the destination's error", werr)
		}
		if _, err := w.Close(); !errors.Is(err, boom) {
			t.Errorf("Close after failure = %v, want the same error", err)
		}
	})
}

type failWriter struct {
	left int
	err  error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n := f.left
		f.left = 0
		return n, f.err
	}
	f.left -= len(p)
	return len(p), nil
}

func TestVerifyDoesNotMoveNext(t *testing.T) {
	batches := randomBatches(7, 1, 50, 100)
	b, _ := writeSegment(t, segHeader(1, 1<<20), batches, nil)
	r, err := openBytes(b, "s")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, want := range batches {
		if i == 20 {
			if err := r.Verify(); err != nil {
				t.Fatalf("Verify in the middle: %v", err)
			}
		}
		got, err := r.NextBatch()
		if err != nil || got.Seq != want.Seq || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("batch %d: %v (seq %d, want %d)", i, err, got.Seq, want.Seq)
		}
	}
	if _, err := r.NextBatch(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	r.Close()
	if _, err := r.NextBatch(); err == nil || err == io.EOF {
		t.Errorf("NextBatch after Close = %v, want an error", err)
	}
}

func TestDeterministic(t *testing.T) {
	batches := randomBatches(8, 1, 300, 400)
	labels := []ChangeLabel{{Account: 3, Collection: 1, MinChange: 1, MaxChange: 2}, {Account: 1, Collection: 1, MinChange: 1, MaxChange: 2}}
	a, _ := writeSegment(t, segHeader(1, 1<<20), batches, labels)
	b, _ := writeSegment(t, segHeader(1, 1<<20), batches, []ChangeLabel{labels[1], labels[0]})
	if !bytes.Equal(a, b) {
		t.Error("the same segment encodes to different bytes")
	}
	acc := map[uint32]uint64{}
	for i := range uint32(100) {
		acc[i*7919] = uint64(i)
	}
	x, _ := writeExport(t, expHeader(9, testFamilies()), randomEntries(9, 3, 100, 10), acc)
	y, _ := writeExport(t, expHeader(9, testFamilies()), randomEntries(9, 3, 100, 10), acc)
	if !bytes.Equal(x, y) {
		t.Error("the same export encodes to different bytes")
	}
}

func TestLayout(t *testing.T) {
	// Check the documented framing directly on writer output.
	b := smallSegment(t)
	if string(b[:8]) != SegmentMagic || binary.LittleEndian.Uint16(b[8:]) != 1 {
		t.Fatalf("prefix %q", b[:10])
	}
	hlen := binary.LittleEndian.Uint32(b[10:])
	if b[14] != '{' || b[14+hlen-1] != '}' {
		t.Errorf("header payload is not a JSON object")
	}
	f := b[len(b)-24:]
	if string(f[16:]) != EndMagic {
		t.Errorf("end magic %q", f[16:])
	}
	blen, tlen := binary.LittleEndian.Uint64(f), binary.LittleEndian.Uint32(f[8:])
	if 14+uint64(hlen)+blen+uint64(tlen)+24 != uint64(len(b)) {
		t.Errorf("sizes do not add up")
	}
	body := b[14+hlen : 14+uint64(hlen)+blen]
	if !bytes.HasPrefix(body, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Errorf("body does not start with the zstd frame magic: %x", body[:4])
	}
	e := smallExport(t)
	if string(e[:8]) != ExportMagic {
		t.Errorf("export magic %q", e[:8])
	}
}

func TestNames(t *testing.T) {
	if got := SegmentName(1, 0xabc); got != "0000000000000001-0000000000000abc.tseg" {
		t.Errorf("SegmentName = %s", got)
	}
	if got := ExportName(0xdeadbeef); got != "00000000deadbeef.texp" {
		t.Errorf("ExportName = %s", got)
	}
	for _, pair := range [][2]uint64{{0, 0}, {5, 9}, {1, ^uint64(0)}} {
		name := "generations/g/segments/" + SegmentName(pair[0], pair[1])
		f, l, err := ParseSegmentName(name)
		if err != nil || f != pair[0] || l != pair[1] {
			t.Errorf("ParseSegmentName(%s) = %d, %d, %v", name, f, l, err)
		}
		s, err := ParseExportName(ExportName(pair[1]))
		if err != nil || s != pair[1] {
			t.Errorf("ParseExportName = %d, %v", s, err)
		}
	}
	for _, bad := range []string{"", ".tseg", "0000000000000001-0000000000000ABC.tseg", "0000000000000002-0000000000000001.tseg",
		"000000000000001-0000000000000abc.tseg", "0000000000000001_0000000000000abc.tseg", "0000000000000001-0000000000000abc.texp",
		"0000000000000001-0000000000000abc.tseg/", "+000000000000001-0000000000000abc.tseg"} {
		if _, _, err := ParseSegmentName(bad); err == nil {
			t.Errorf("ParseSegmentName(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "00000000deadbeef.tseg", "00000000DEADBEEF.texp", "0000000deadbeef.texp", "x/00000000deadbeeg.texp"} {
		if _, err := ParseExportName(bad); err == nil {
			t.Errorf("ParseExportName(%q) accepted", bad)
		}
	}
}

func TestBatchCount(t *testing.T) {
	if c := (Batch{Data: wbatch(1, 77, nil)}).Count(); c != 77 {
		t.Errorf("Count = %d", c)
	}
	if c := (Batch{Data: []byte{1, 2}}).Count(); c != 0 {
		t.Errorf("Count of a short batch = %d", c)
	}
}

// TestGoldenV1 reads objects written by format version 1 and committed to
// testdata: a reader must always read them (the bucket contract).
func TestGoldenV1(t *testing.T) {
	files := map[string]func(testing.TB) []byte{"v1-segment.tseg": smallSegment, "v1-export.texp": smallExport}
	for name, gen := range files {
		path := filepath.Join("testdata", name)
		if *updateGolden {
			if err := os.WriteFile(path, gen(t), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := openAndVerify(b, path); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		gb, ge, err := readAll(b)
		if err != nil {
			t.Fatal(err)
		}
		wb, we, _ := readAll(gen(t))
		if !reflect.DeepEqual(gb, wb) || !reflect.DeepEqual(ge, we) {
			t.Errorf("%s: content differs from what the test writes today", path)
		}
		r, _ := openBytes(b, path)
		h := r.Header()
		if h.Generation != "20261122T213000Z-3f9a1c" || !h.Created.Equal(testCreated) || !reflect.DeepEqual(h.Families, testFamilies()) {
			t.Errorf("%s: header %+v", path, h)
		}
	}
}
