package segment

import (
	"encoding/binary"
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
	// Huge stated lengths in small objects: a batch and a value of 64 MiB
	// of zeros (RLE blocks), a stated batch length of 2^40, and a trailer
	// claiming 2^62 uncompressed bytes.
	const big = 64 << 20
	rec := binary.AppendUvarint(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 12), 5), big)
	f.Add(segParts(nil, 1, map[string]any{"uncompressed_len": len(rec) + big}).with(zstdFrame(20, rec, big)).build(f))
	val := binary.AppendUvarint([]byte{0, 1, 'k'}, big)
	f.Add(expParts(nil, []any{map[string]any{"name": "default", "keys": 1, "digest": refDigest(nil)},
		map[string]any{"name": "t", "keys": 0, "digest": refDigest(nil)}}, map[string]any{"uncompressed_len": len(val) + big}).
		with(zstdFrame(20, val, big)).build(f))
	rec = binary.AppendUvarint(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 12), 5), 1<<40)
	f.Add(segParts(nil, 1, map[string]any{"uncompressed_len": uint64(1) << 41}).with(zstdFrame(20, rec, 0)).build(f))
	f.Add(segParts(nil, 1, map[string]any{"uncompressed_len": uint64(1) << 62}).with(zstdFrame(20, nil, 0)).build(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r *Reader
		var err error
		n := allocated(func() { r, err = openBytes(data, "fuzz") })
		checkAllocBound(t, n, len(data), "Open")
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
		var verr, rerr error
		n = allocated(func() {
			verr = r.Verify()
			for {
				if r.Header().Kind == KindSegment {
					_, rerr = r.NextBatch()
				} else {
					_, _, _, rerr = r.NextEntry()
				}
				if rerr != nil {
					break
				}
			}
		})
		checkAllocBound(t, n, len(data), "reading")
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
	f.Add(cat(segRecord(12, 5, wbatch(12, 1, []byte("0123456789"))), segRecord(13, 5, wbatch(13, 1, nil))), false, uint64(2), uint64(0), uint32(0))
	f.Add(cat(expRecord(0, []byte("a"), []byte("1")), expRecord(1, []byte("a"), nil)), true, uint64(2), uint64(0), uint32(0))
	f.Add([]byte{}, true, uint64(0), uint64(0), uint32(0))
	// Stated lengths far beyond the body, with the trailer's length
	// raised and the body padded so that the ratio check lets them
	// through to the record parser.
	f.Add(segRecord(12, 5, nil)[:16], false, uint64(1), uint64(1)<<40, uint32(1<<20))
	f.Add(binary.AppendUvarint(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 12), 5), MaxBatchLen+1), false, uint64(1), uint64(MaxBatchLen)*2, uint32(32<<20))
	f.Add(binary.AppendUvarint([]byte{0}, MaxKeyLen+1), true, uint64(1), uint64(MaxKeyLen)*2, uint32(1<<20))
	f.Add(binary.AppendUvarint([]byte{0, 1, 'k'}, 1<<33), true, uint64(1), uint64(1)<<34, uint32(1<<20))
	f.Fuzz(func(t *testing.T, body []byte, export bool, records, stated uint64, padding uint32) {
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
		if stated != 0 {
			p.trailer["uncompressed_len"] = stated
		}
		p.padding = int(padding % (40 << 20))
		b := p.build(t)
		var verr, rerr error
		n := allocated(func() {
			verr = openAndVerify(b, "fuzz")
			_, _, rerr = readAll(b)
		})
		checkAllocBound(t, n, len(b), "reading")
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

// checkAllocBound fails when reading an object of size bytes allocated more
// than the format allows: the decoder's window and buffers for a few
// passes, plus at most MaxCompressionRatio times the object (the most its
// body may decompress to) for each of them, with room for slices growing.
func checkAllocBound(t *testing.T, n uint64, size int, what string) {
	t.Helper()
	bound := uint64(64<<20) + 8*MaxCompressionRatio*uint64(size)
	if n > bound {
		t.Fatalf("%s an object of %d bytes allocated %d MiB, more than the bound of %d MiB", what, size, n>>20, bound>>20)
	}
}
