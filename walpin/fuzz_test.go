package walpin

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"testing"
)

// walWriter writes RocksDB's log format (log_writer.cc) independently of
// the reader, for the fuzzers: 32 KiB blocks, a tail shorter than a
// header zero-padded, logical records split into FIRST/MIDDLE/LAST
// fragments at block ends.
type walWriter struct {
	b          []byte
	recyclable bool
	logNumber  uint32
}

func (w *walWriter) headerSize() int {
	if w.recyclable {
		return recyclableHeaderSize
	}
	return headerSize
}

// physical appends one physical record of type typ (a plain type; the
// writer adds the recyclable offset itself).
func (w *walWriter) physical(typ byte, payload []byte) {
	if w.recyclable && typ >= typeFull && typ <= typeLast {
		typ += typeRecyclableFull - typeFull
	}
	h := make([]byte, w.headerSize())
	binary.LittleEndian.PutUint16(h[4:6], uint16(len(payload)))
	h[6] = typ
	if w.recyclable {
		binary.LittleEndian.PutUint32(h[7:11], w.logNumber)
	}
	crc := crc32.Update(crc32.Checksum(h[6:], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(h[0:4], (crc>>15|crc<<17)+0xa282ead8)
	w.b = append(append(w.b, h...), payload...)
}

// logical appends one logical record, fragmented as RocksDB does.
func (w *walWriter) logical(rec []byte) {
	first := true
	for {
		left := blockSize - len(w.b)%blockSize
		if left < w.headerSize() {
			w.b = append(w.b, make([]byte, left)...)
			left = blockSize
		}
		room := left - w.headerSize()
		n := min(room, len(rec))
		last := n == len(rec)
		typ := byte(typeMiddle)
		switch {
		case first && last:
			typ = typeFull
		case first:
			typ = typeFirst
		case last:
			typ = typeLast
		}
		w.physical(typ, rec[:n])
		rec, first = rec[n:], false
		if last {
			return
		}
	}
}

// batchOf returns a recognisable record of n bytes.
func batchOf(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*31 + j)
	}
	return b
}

// readAllocBound is what reading data may allocate: fragments are
// reassembled by appending (at most about twice the file), plus slack.
func readAllocBound(n int) uint64 { return uint64(4*n) + 1<<20 }

// FuzzRead feeds arbitrary bytes to the WAL reader: it must return an
// error or stop quietly, never panic, never deliver more bytes than the
// file holds, never report an offset outside it, and allocate in
// proportion to the file.
func FuzzRead(f *testing.F) {
	w := &walWriter{}
	for i, n := range []int{12, 100, 40000, 12, 70000} {
		w.logical(batchOf(i, n))
	}
	f.Add(w.b, uint64(0))
	rw := &walWriter{recyclable: true, logNumber: 9}
	rw.logical(batchOf(1, 50000))
	rw.physical(typeTimestampSize, []byte{1, 2, 3})
	rw.logical(batchOf(2, 10))
	f.Add(rw.b, uint64(9))
	// a FIRST fragment stating the largest length, then garbage
	big := &walWriter{}
	big.physical(typeFirst, make([]byte, blockSize-headerSize))
	big.b = append(big.b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, typeMiddle)
	f.Add(big.b, uint64(0))
	f.Add([]byte{}, uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, logNumber uint64) {
		var delivered int
		var next int64
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		next, _ = read(data, 0, logNumber, func(b []byte, end int64) error {
			delivered += len(b)
			if end < 0 || end > int64(len(data)) {
				t.Fatalf("record ends at %d, outside the %d-byte file", end, len(data))
			}
			return nil
		})
		runtime.ReadMemStats(&after)
		if next < 0 || next > int64(len(data)) {
			t.Fatalf("read stopped at %d, outside the %d-byte file", next, len(data))
		}
		if delivered > len(data) {
			t.Fatalf("delivered %d bytes from a %d-byte file", delivered, len(data))
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > readAllocBound(len(data)) {
			t.Fatalf("reading a %d-byte file allocated %d bytes", len(data), n)
		}
	})
}

// FuzzLogical writes logical records of fuzzed sizes (crossing block ends
// at every offset) with valid checksums and checks that the reader
// returns exactly them, in order, and that a truncated copy yields a
// prefix of them without error.
func FuzzLogical(f *testing.F) {
	f.Add([]byte{0, 12, 0, 100}, false, uint16(0))
	f.Add([]byte{0x7f, 0xf9, 0x00, 0x10, 0xff, 0xff}, true, uint16(1000))
	f.Add([]byte{0x7f, 0xf2}, false, uint16(7))
	f.Fuzz(func(t *testing.T, sizes []byte, recyclable bool, cut uint16) {
		w := &walWriter{recyclable: recyclable, logNumber: 42}
		var want [][]byte
		for i := 0; i+1 < len(sizes) && len(want) < 64; i += 2 {
			n := int(binary.BigEndian.Uint16(sizes[i:])) * 2 // up to 128 KiB: several blocks
			rec := batchOf(i, n)
			want = append(want, rec)
			w.logical(rec)
		}
		var got [][]byte
		next, err := read(w.b, 0, 42, func(b []byte, _ int64) error {
			got = append(got, bytes.Clone(b))
			return nil
		})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if next != int64(len(w.b)) && len(want) > 0 {
			// only zero padding may follow the last record
			if !bytes.Equal(w.b[next:], make([]byte, len(w.b)-int(next))) {
				t.Fatalf("read stopped at %d of %d", next, len(w.b))
			}
		}
		if len(got) != len(want) {
			t.Fatalf("got %d records, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d: got %d bytes, want %d", i, len(got[i]), len(want[i]))
			}
		}
		// A live file may end anywhere: a torn tail ends the read quietly
		// with whole records only.
		torn := w.b[:len(w.b)-min(int(cut), len(w.b))]
		got = got[:0]
		_, err = read(torn, 0, 42, func(b []byte, _ int64) error {
			got = append(got, bytes.Clone(b))
			return nil
		})
		if err != nil {
			t.Fatalf("read of the first %d bytes: %v", len(torn), err)
		}
		if len(got) > len(want) {
			t.Fatalf("torn copy gave %d records, more than the %d written", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("torn copy: record %d differs", i)
			}
		}
	})
}

// TestRecyclableBlockTailPadding: with recyclable records (11-byte
// headers), RocksDB pads a block tail of 7 to 10 bytes with zeros. The
// reader took those zeros for a 7-byte header of preallocated space and
// ended the file there, silently dropping every later batch (found by
// FuzzLogical).
func TestRecyclableBlockTailPadding(t *testing.T) {
	for tail := headerSize; tail < recyclableHeaderSize; tail++ {
		w := &walWriter{recyclable: true, logNumber: 3}
		first := batchOf(1, blockSize-recyclableHeaderSize-tail) // leaves tail bytes in block 0
		w.logical(first)
		second := batchOf(2, 100)
		w.logical(second)
		var got [][]byte
		_, err := read(w.b, 0, 3, func(b []byte, _ int64) error { got = append(got, bytes.Clone(b)); return nil })
		if err != nil || len(got) != 2 || !bytes.Equal(got[0], first) || !bytes.Equal(got[1], second) {
			t.Errorf("tail of %d bytes: got %d records, err %v; want both", tail, len(got), err)
		}
	}
}
