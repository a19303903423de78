package stalwartfmt_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"

	"github.com/linxGnu/grocksdb"
	"github.com/pierrec/lz4/v4"

	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/store"
)

// exportedLayout is schema 6's list as doc.go describes it: letter, then
// "-" for key only, "*" for the blob subspace.
var exportedLayout = []string{"a", "i-", "u", "n", "p", "t*", "k", "s", "b-", "g", "d", "l", "e", "q", "h", "r", "o", "x", "f"}

// expectedDump computes, straight from the store and the format document,
// the records every file must hold: each exported family in key order
// within Stalwart's range (values dropped for key-only subspaces), and for
// t one record per distinct hash linked in k that t holds, decoded.
func expectedDump(t *testing.T, st *store.Store) map[byte][]kv {
	t.Helper()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	scan := func(fam string, fn func(k, v []byte)) {
		h := st.Handle(fam)
		if h == nil {
			return
		}
		it := st.DB.NewIteratorCF(ro, h)
		defer it.Close()
		for it.SeekToFirst(); it.Valid(); it.Next() {
			fn(bytes.Clone(it.Key().Data()), bytes.Clone(it.Value().Data()))
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	out := map[byte][]kv{}
	for _, spec := range exportedLayout {
		letter := spec[0]
		recs := []kv{}
		switch {
		case strings.HasSuffix(spec, "*"):
			blobs := map[string][]byte{}
			scan(string(letter), func(k, v []byte) { blobs[string(k)] = v })
			hashes := map[string]bool{}
			scan("k", func(k, _ []byte) {
				if stalwartReads(k) {
					hashes[string(k[:32])] = true
				}
			})
			var sorted []string
			for h := range hashes {
				sorted = append(sorted, h)
			}
			sort.Strings(sorted)
			for _, h := range sorted {
				v, ok := blobs[h]
				if !ok {
					continue
				}
				data, err := decodeBlobValue(v)
				if err != nil {
					t.Fatalf("blob %x: %v", h, err)
				}
				recs = append(recs, kv{Key: []byte(h), Value: data})
			}
		default:
			keyOnly := strings.HasSuffix(spec, "-")
			scan(string(letter), func(k, v []byte) {
				if !stalwartReads(k) {
					return
				}
				if keyOnly {
					v = []byte{}
				}
				recs = append(recs, kv{Key: k, Value: v})
			})
		}
		out[letter] = recs
	}
	return out
}

// compareDump checks a decoded export against expectedDump, record by
// record, and returns the number of records compared.
func compareDump(t *testing.T, got map[byte]dumpFile, want map[byte][]kv, schema uint32) int {
	t.Helper()
	if len(got) != len(want) {
		var names []string
		for _, f := range got {
			names = append(names, f.Name)
		}
		sort.Strings(names)
		t.Fatalf("export has %d files %v, want %d (one per exported subspace)", len(got), names, len(want))
	}
	n := 0
	for letter, recs := range want {
		f, ok := got[letter]
		if !ok {
			t.Fatalf("no file for subspace %c", letter)
		}
		if f.Schema != schema {
			t.Errorf("%s: schema %d, want %d", f.Name, f.Schema, schema)
		}
		if len(f.Records) != len(recs) {
			t.Errorf("%s: %d records, want %d", f.Name, len(f.Records), len(recs))
		}
		for i := 0; i < len(f.Records) && i < len(recs); i++ {
			g, w := f.Records[i], recs[i]
			if !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) {
				t.Errorf("%s record %d: got %x=%s, want %x=%s", f.Name, i, g.Key, short(g.Value), w.Key, short(w.Value))
				break
			}
		}
		n += len(recs)
	}
	return n
}

func short(v []byte) string {
	if len(v) > 24 {
		return fmt.Sprintf("%x...(%d bytes)", v[:24], len(v))
	}
	return fmt.Sprintf("%x", v)
}

// hash32 is a recognisable 32-byte blob hash.
func hash32(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// lz4Value stores payload as Stalwart does with LZ4: the uncompressed
// length u32 LE, one LZ4 block, the 0xA1 marker.
func lz4Value(t *testing.T, payload []byte) []byte {
	t.Helper()
	dst := make([]byte, lz4.CompressBlockBound(len(payload)))
	n, err := lz4.CompressBlock(payload, dst, nil)
	if err != nil || n == 0 {
		t.Fatalf("lz4 compress %d bytes: n=%d err=%v", len(payload), n, err)
	}
	v := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	v = append(v, dst[:n]...)
	return append(v, 0xA1)
}

// text returns n bytes of compressible text.
func text(n int, seed string) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s line %d: The quick brown fox jumps over the lazy dog.\r\n", seed, i%97)
	}
	return b.Bytes()[:n]
}

// injectEdges writes the cases a load generator does not: LZ4-marked
// blobs (one large enough for a blob file), a link without a blob, an
// unmarked and an empty blob value, a blob without link, keys at the edges
// of Stalwart's iteration range, a non-empty value in a key-only subspace,
// content in skipped subspaces, and an empty changelog value.
func injectEdges(t *testing.T, st *store.Store) {
	t.Helper()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	put := func(fam string, k, v []byte) {
		h := st.Handle(fam)
		if h == nil {
			t.Fatalf("no family %s", fam)
		}
		wb.PutCF(h, k, v)
	}
	link := func(hash []byte, acct uint32) []byte {
		return binary.BigEndian.AppendUint32(append(bytes.Clone(hash), 0), acct)
	}
	// 0xA1 blobs: a large one (in a blob file) linked twice, a small one.
	put("t", hash32(0xA1), lz4Value(t, text(3*stalwart.BlobMinSize, "large")))
	put("k", link(hash32(0xA1), 1), nil)
	put("k", link(hash32(0xA1), 2), nil)
	put("t", hash32(0xA2), lz4Value(t, text(300, "small")))
	put("k", link(hash32(0xA2), 3), nil)
	// Linked, not stored: skipped.
	put("k", link(hash32(0xC0), 1), nil)
	// Unknown marker: exported as stored. Empty value: an empty blob.
	put("t", hash32(0xD0), []byte("no marker\x42"))
	put("k", link(hash32(0xD0), 1), nil)
	put("t", hash32(0xE0), []byte{})
	put("k", link(hash32(0xE0), 1), nil)
	// Stored, not linked: not exported.
	put("t", hash32(0xF0), append([]byte("orphan"), 0x00))
	// Range edges in an ordinary subspace.
	ff := hash32(0xFF)
	put("a", []byte{}, []byte("empty key: outside"))
	put("a", ff, []byte("32 x FF: inside"))
	put("a", append(bytes.Clone(ff), 0x00), []byte("32 x FF + 00: outside"))
	put("a", append(bytes.Clone(ff), 0xFF), []byte("33 x FF: outside"))
	put("a", append([]byte{0xFF, 0xFE}, ff...), []byte("FF FE ...: inside"))
	// A value in a key-only subspace is dropped.
	put("i", []byte("\x00\x00\x00\x01\x00\x07term\x00\x00\x00\x09"), []byte("dropped"))
	// Skipped subspaces.
	put("m", []byte("in-memory"), []byte("x"))
	put("z", []byte("search"), []byte("x"))
	put("j", []byte("deleted"), []byte("x"))
	put("w", []byte("spam"), []byte("x"))
	put("v", []byte("legacy"), []byte("x"))
	put("c", []byte("legacy"), []byte("x"))
	// An empty changelog value (a purge's truncation marker).
	put("l", []byte("\x00\x00\x00\x63\x00\x00\x00\x00\x00\x00\x00\x00\x01"), nil)
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	if err := st.DB.Write(wo, wb); err != nil {
		t.Fatal(err)
	}
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
