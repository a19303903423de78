package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// zstdFrame returns a hand-made zstd frame without checksum whose content
// is prefix (one raw block) followed by zeros zero bytes (RLE blocks of
// 128 KiB: 4 bytes each). windowLog is the window the frame declares. A few
// kilobytes of it decompress to gigabytes: the shape of a hostile object.
func zstdFrame(windowLog uint8, prefix []byte, zeros uint64) []byte {
	b := []byte{0x28, 0xB5, 0x2F, 0xFD, 0x00, (windowLog - 10) << 3}
	block := func(last bool, typ byte, size int) {
		h := uint32(size)<<3 | uint32(typ)<<1
		if last {
			h |= 1
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16))
	}
	block(zeros == 0, 0, len(prefix))
	b = append(b, prefix...)
	for zeros > 0 {
		n := min(zeros, 128<<10)
		zeros -= n
		block(zeros == 0, 1, int(n))
		b = append(b, 0)
	}
	return b
}

// skippable returns a zstd skippable frame of n zero bytes, as writers pad
// with.
func skippable(n int) []byte {
	b := binary.LittleEndian.AppendUint32(nil, skippableMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	return append(b, make([]byte, n)...)
}

// allocated returns the bytes f allocated on the Go heap (not the heap's
// size: everything allocated, even if freed again).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// readFully opens b, verifies it and reads every record, returning the
// first error.
func readFully(b []byte) error {
	r, err := openBytes(b, "hostile")
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Verify(); err != nil {
		return err
	}
	_, _, err = readAll(b)
	return err
}

// TestHostileLengthsStayBounded feeds objects whose stated lengths are
// huge while the objects are small (the reviewer's case: a 112 KiB object
// made restore allocate 6.3 GiB). Each must be refused as corrupt, with a
// message saying what is wrong, without allocating more than a bound that
// does not depend on the stated lengths.
func TestHostileLengthsStayBounded(t *testing.T) {
	const bound = 48 << 20 // decoder window and buffers of two passes, and slack
	segRecHeader := func(n uint64) []byte {
		b := binary.LittleEndian.AppendUint64(nil, 12)
		b = binary.LittleEndian.AppendUint64(b, 5)
		return binary.AppendUvarint(b, n)
	}
	expRecHeader := func(klen uint64) []byte {
		return binary.AppendUvarint(binary.AppendUvarint(nil, 0), klen)
	}
	const big = 256 << 20 // decoded size of the zero runs
	twoFams := func(keys int) []any {
		return []any{map[string]any{"name": "default", "keys": keys, "digest": refDigest(nil)},
			map[string]any{"name": "t", "keys": 0, "digest": refDigest(nil)}}
	}
	batchHdr := segRecHeader(big)
	valueHdr := binary.AppendUvarint(append(expRecHeader(1), 'k'), big)
	keyHdr := expRecHeader(MaxKeyLen + 1)
	hugeHdr := segRecHeader(MaxBatchLen + 1)
	tests := []struct {
		name string
		obj  []byte
		want string
	}{{
		// 256 MiB of zeros in an 8 KiB object: a ratio of 32768.
		name: "segment batch of RLE zeros",
		obj: segParts(nil, 1, map[string]any{"uncompressed_len": len(batchHdr) + big}).
			with(zstdFrame(20, batchHdr, big)).build(t),
		want: "decompresses to",
	}, {
		name: "export value of RLE zeros",
		obj: expParts(nil, twoFams(1), map[string]any{"uncompressed_len": len(valueHdr) + big}).
			with(zstdFrame(20, valueHdr, big)).build(t),
		want: "decompresses to",
	}, {
		// Padded so that the ratio check passes: the key length itself
		// must be refused before 16 MiB are read into a buffer.
		name: "export key longer than MaxKeyLen",
		obj: expParts(nil, twoFams(1), map[string]any{"uncompressed_len": len(keyHdr) + MaxKeyLen + 2}).
			with(cat(zstdFrame(20, keyHdr, MaxKeyLen+2), skippable(MaxKeyLen/MaxCompressionRatio+1))).build(t),
		want: "key of 16777217 bytes is longer than the format allows",
	}, {
		name: "segment batch longer than MaxBatchLen, stated only",
		obj: segParts(nil, 1, map[string]any{"uncompressed_len": len(hugeHdr) + MaxBatchLen + 1}).
			with(cat(zstdFrame(20, hugeHdr, 0), skippable(MaxBatchLen/MaxCompressionRatio+1))).build(t),
		want: "batch of 2147483649 bytes is longer than the format allows",
	}, {
		// A frame declaring a 64 MiB window makes the decoder allocate
		// the window up front, whatever the content.
		name: "zstd window of 64 MiB",
		obj: segParts(nil, 1, map[string]any{"uncompressed_len": 16 + 1 + 12}).
			with(zstdFrame(26, segRecord(12, 5, wbatch(12, 1, nil)), 0)).build(t),
		want: "does not decompress",
	}, {
		name: "uncompressed length of 2^62 in the trailer",
		obj:  segParts(nil, 1, map[string]any{"uncompressed_len": uint64(1) << 62}).with(zstdFrame(20, nil, 0)).build(t),
		want: "decompresses to",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocated(func() { err = readFully(tc.obj) })
			if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("object of %d bytes: err = %v, want ErrCorrupt containing %q", len(tc.obj), err, tc.want)
			}
			if n > bound {
				t.Errorf("object of %d bytes: reading allocated %d MiB, more than %d MiB", len(tc.obj), n>>20, bound>>20)
			}
		})
	}
}

// with returns p with its stored body replaced.
func (p parts) with(stored []byte) parts {
	p.stored = stored
	return p
}

// TestWriterPadsHighRatio: data that compresses better than
// MaxCompressionRatio is padded so the object passes the reader's ratio
// check, and the padding (skippable frames) is invisible to the reader.
// 20 MiB of zeros also exceed the decoder's memory limit, which must bound
// the window only, not the streamed output.
func TestWriterPadsHighRatio(t *testing.T) {
	zeros := make([]byte, 20<<20)
	seg, tr := writeSegment(t, segHeader(1, 10), []Batch{{Seq: 1, Data: wbatch(1, 1, zeros)}}, nil)
	if min := minBodyLen(tr.UncompressedLen); uint64(len(seg)) < min {
		t.Fatalf("segment of %d uncompressed bytes is %d bytes, want at least %d", tr.UncompressedLen, len(seg), min)
	}
	batches, _, err := readAll(seg)
	if err != nil || len(batches) != 1 || !bytes.Equal(batches[0].Data[12:], zeros) {
		t.Fatalf("read back: %d batches, err %v", len(batches), err)
	}
	if err := openAndVerify(seg, "padded"); err != nil {
		t.Fatal(err)
	}
	exp, _ := writeExport(t, expHeader(5, testFamilies()), []entry{{0, []byte("a"), zeros}, {0, []byte("b"), zeros}}, nil)
	_, entries, err := readAll(exp)
	if err != nil || len(entries) != 2 || !bytes.Equal(entries[1].value, zeros) {
		t.Fatalf("read back export: %d entries, err %v", len(entries), err)
	}
	// Small objects need no padding: the golden files stay byte-identical.
	small := smallSegment(t)
	if bytes.Contains(small, binary.LittleEndian.AppendUint32(nil, skippableMagic)) {
		t.Errorf("a small segment was padded")
	}
}

// TestWriterRefusesOverLimit: writers refuse records the reader would
// refuse. The large buffers are never touched, so they cost address space,
// not memory.
func TestWriterRefusesOverLimit(t *testing.T) {
	var buf bytes.Buffer
	ew, err := NewExportWriter(&buf, expHeader(5, testFamilies()))
	if err != nil {
		t.Fatal(err)
	}
	if err := ew.Add(0, make([]byte, MaxKeyLen+1), nil); err == nil || !strings.Contains(err.Error(), "MaxKeyLen") {
		t.Errorf("key over the limit: err = %v", err)
	}
	if err := ew.Add(0, []byte("k"), make([]byte, MaxValueLen+1)); err == nil || !strings.Contains(err.Error(), "MaxValueLen") {
		t.Errorf("value over the limit: err = %v", err)
	}
	sw, err := NewSegmentWriter(io.Discard, segHeader(1, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Append(Batch{Seq: 1, Data: make([]byte, MaxBatchLen+1)}); err == nil || !strings.Contains(err.Error(), "MaxBatchLen") {
		t.Errorf("batch over the limit: err = %v", err)
	}
}
