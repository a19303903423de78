package segment

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open, Verify and Next*: nothing may
// panic or allocate without bound, and Verify and reading to io.EOF must
// agree on whether the object is intact.
func FuzzOpen(f *testing.F) {
	f.Add(smallSegment(f))
	f.Add(smallExport(f))
	b, _ := writeSegment(f, segHeader(1, 100), nil, nil)
	f.Add(b)
	b, _ = writeExport(f, expHeader(1, nil), nil, nil)
	f.Add(b)
	b, _ = writeSegment(f, segHeader(1, 1<<20), randomBatches(10, 1, 20, 40), nil)
	f.Add(b)
	for _, name := range []string{"v1-segment.tseg", "v1-export.texp"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := openBytes(data, "fuzz")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Open error is not an *Error: %v", err)
			}
			return
		}
		defer r.Close()
		_ = r.Header()
		_ = r.Trailer()
		verr := r.Verify()
		var rerr error
		for i := 0; ; i++ {
			if r.Header().Kind == KindSegment {
				_, rerr = r.NextBatch()
			} else {
				_, _, _, rerr = r.NextEntry()
			}
			if rerr != nil {
				break
			}
		}
		if rerr == io.EOF {
			rerr = nil
		}
		if (verr == nil) != (rerr == nil) {
			t.Fatalf("Verify = %v but reading = %v", verr, rerr)
		}
	})
}

// FuzzBody seals arbitrary uncompressed bodies with valid checksums, so the
// fuzzer reaches the record parser that FuzzOpen's checksums shield.
func FuzzBody(f *testing.F) {
	f.Add(cat(segRecord(12, 5, wbatch(12, 1, []byte("0123456789"))), segRecord(13, 5, wbatch(13, 1, nil))), false, uint64(2))
	f.Add(cat(expRecord(0, []byte("a"), []byte("1")), expRecord(1, []byte("a"), nil)), true, uint64(2))
	f.Add([]byte{}, true, uint64(0))
	f.Fuzz(func(t *testing.T, body []byte, export bool, records uint64) {
		var p parts
		if export {
			// Records split over the two families; digests are whatever
			// they are: the reader must fail cleanly, not panic.
			p = expParts(body, []any{
				map[string]any{"name": "default", "keys": 0, "digest": refDigest(nil)},
				map[string]any{"name": "t", "keys": 0, "digest": refDigest(nil)},
			}, map[string]any{"records": records, "families": []any{
				map[string]any{"name": "default", "keys": records, "digest": refDigest(nil)},
				map[string]any{"name": "t", "keys": 0, "digest": refDigest(nil)},
			}})
		} else {
			p = segParts(body, int(records%1000), nil)
		}
		b := p.build(t)
		verr := openAndVerify(b, "fuzz")
		_, _, rerr := readAll(b)
		if (verr == nil) != (rerr == nil) {
			t.Fatalf("Verify = %v but reading = %v", verr, rerr)
		}
		if verr != nil && !errors.Is(verr, ErrCorrupt) {
			t.Fatalf("error is not ErrCorrupt: %v", verr)
		}
	})
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}
