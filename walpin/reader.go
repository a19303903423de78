// Package walpin keeps the primary's WAL files readable after the primary
// deletes them, so that a tailer which falls behind does not lose batches,
// and reads the batches from them with its own reader of RocksDB's log
// format.
//
// Stalwart never sets WAL retention: RocksDB deletes a WAL file as soon as
// every family in it has flushed. A Pinned source hard-links every new WAL file
// into tailer's scratch directory (same filesystem; nothing is written in
// the primary's directory) the moment it appears, serves batches from the
// pins, and drops a pin once everything in it has been shipped. tailer
// does not read batches through RocksDB's WAL iterator (GetUpdatesSince)
// on its secondary: it only sees files still in the primary's directory,
// and Debian's RocksDB 9.10, built with assertions, aborts the process in
// it (transaction_log_impl.cc:278) when it meets batches newer than the
// secondary's last catch-up, which sustained load makes certain. Where
// hard links are impossible, the same reader reads the primary's files in
// place (an InPlace source; see Source).
//
// The log format (RocksDB db/log_format.h, log_writer.cc): the file is a
// sequence of 32 KiB blocks; each block holds physical records with a
// 7-byte header (masked CRC32C u32 LE, length u16 LE, type u8), or an
// 11-byte header for recyclable types (+ u32 LE log number). A logical
// record (one WriteBatch) is a FULL record or FIRST, MIDDLE..., LAST
// fragments. A block tail shorter than a header is zero padding. Types 9
// (compression), 10 and 11 (timestamp sizes) are metadata; types with bit
// 5 set may be ignored by readers that do not know them. The CRC covers
// the type byte, the log number (recyclable types) and the payload.
package walpin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

const (
	blockSize            = 32768
	headerSize           = 7
	recyclableHeaderSize = 11

	typeZero                    = 0
	typeFull                    = 1
	typeFirst                   = 2
	typeMiddle                  = 3
	typeLast                    = 4
	typeRecyclableFull          = 5
	typeRecyclableLast          = 8
	typeSetCompression          = 9
	typeTimestampSize           = 10
	typeRecyclableTimestampSize = 11
	safeIgnoreMask              = 1 << 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// unmask reverses RocksDB's CRC masking (crc32c.h).
func unmask(m uint32) uint32 {
	rot := m - 0xa282ead8
	return rot>>17 | rot<<15
}

// ErrUnsupported marks WAL features tailer's reader does not handle
// (compressed WAL); the caller falls back to a new generation.
var ErrUnsupported = errors.New("unsupported WAL feature")

// ReadFile calls fn with every complete logical record (a WriteBatch
// representation) of the WAL file at path, in order. logNumber is the
// file's number (from its name), used to tell a recycled file's stale
// records from current ones. A torn or partially written tail ends the
// read without error: the file may still be being written.
func ReadFile(path string, logNumber uint64, fn func(batch []byte) error) error {
	_, err := readFileFrom(path, logNumber, 0, func(b []byte, _ int64) error { return fn(b) })
	return err
}

// errStop lets a callback end a read without consuming the record.
var errStop = errors.New("stop")

// readFileFrom reads the records of the file from byte offset off, which
// must be the end of a logical record (or 0), and calls fn with each and
// the offset just after it. It returns the offset after the last record
// consumed: where the next read starts. fn may return errStop to leave
// the record unconsumed.
func readFileFrom(path string, logNumber uint64, off int64, fn func(batch []byte, end int64) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return off, fmt.Errorf("read WAL %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return off, fmt.Errorf("read WAL %s: %w", path, err)
	}
	if st.Size() <= off {
		return off, nil
	}
	data := make([]byte, st.Size()-off)
	n, err := f.ReadAt(data, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return off, fmt.Errorf("read WAL %s: %w", path, err)
	}
	next, err := read(data[:n], off, logNumber, fn)
	if err != nil {
		return next, fmt.Errorf("WAL %s: %w", path, err)
	}
	return next, nil
}

// read parses data, which starts at absolute file offset base (a logical
// record boundary), and returns the absolute offset after the last
// logical record consumed.
func read(data []byte, base int64, logNumber uint64, fn func([]byte, int64) error) (int64, error) {
	var frag []byte
	inFrag := false
	consumed := base
	for rel := 0; rel < len(data); {
		abs := base + int64(rel)
		blockLeft := blockSize - int(abs%blockSize)
		if blockLeft < headerSize {
			rel += blockLeft // zero padding at a block's end
			if !inFrag {
				consumed = min(base+int64(rel), base+int64(len(data)))
			}
			continue
		}
		if len(data)-rel < headerSize {
			return consumed, nil // torn header at the end of a live file
		}
		h := data[rel:]
		length := int(binary.LittleEndian.Uint16(h[4:6]))
		typ := h[6]
		hs := headerSize
		if typ >= typeRecyclableFull && typ <= typeRecyclableLast || typ == typeRecyclableTimestampSize {
			hs = recyclableHeaderSize
			if len(h) < hs {
				return consumed, nil
			}
			if uint64(binary.LittleEndian.Uint32(h[7:11])) != logNumber&0xffffffff {
				return consumed, nil // a record of the file's previous life: the end
			}
		}
		if typ == typeZero && length == 0 {
			if blockLeft < recyclableHeaderSize {
				// A writer of recyclable records pads a block tail
				// shorter than their 11-byte header with zeros
				// (log_writer.cc), as RocksDB's reader skips it: go on in
				// the next block. consumed stays, since in a live plain
				// file these bytes may still receive a short record.
				rel += blockLeft
				continue
			}
			return consumed, nil // preallocated, never written space
		}
		if hs+length > blockLeft {
			return consumed, fmt.Errorf("record at byte %d: length %d crosses its block", abs, length)
		}
		if rel+hs+length > len(data) {
			return consumed, nil // torn record at the end of a live file
		}
		payload := data[rel+hs : rel+hs+length]
		want := unmask(binary.LittleEndian.Uint32(h[0:4]))
		got := crc32.Update(crc32.Checksum(h[6:hs], castagnoli), castagnoli, payload)
		if want != got {
			if rel+hs+length >= len(data)-blockSize {
				return consumed, nil // a torn write in the last block of a live file
			}
			return consumed, fmt.Errorf("record at byte %d: checksum mismatch", abs)
		}
		rel += hs + length
		end := base + int64(rel)
		deliver := func(b []byte) error {
			if err := fn(b, end); err != nil {
				return err
			}
			consumed = end
			return nil
		}
		var err error
		switch b := normalize(typ); {
		case b == typeFull:
			err = deliver(payload)
			inFrag, frag = false, frag[:0]
		case b == typeFirst:
			frag, inFrag = append(frag[:0], payload...), true
		case b == typeMiddle:
			if inFrag {
				frag = append(frag, payload...)
			}
		case b == typeLast:
			if inFrag {
				err = deliver(append(frag, payload...))
			}
			inFrag, frag = false, frag[:0]
		case typ == typeSetCompression:
			if len(payload) < 1 || payload[0] != 0 {
				return consumed, fmt.Errorf("%w: the WAL is compressed", ErrUnsupported)
			}
			consumed = end
		case typ == typeTimestampSize || typ == typeRecyclableTimestampSize || typ&safeIgnoreMask != 0:
			consumed = end // metadata records: nothing to ship
		default:
			return consumed, fmt.Errorf("record at byte %d: unknown type %d", abs, typ)
		}
		if errors.Is(err, errStop) {
			return consumed, nil
		}
		if err != nil {
			return consumed, err
		}
	}
	return consumed, nil
}

// normalize maps recyclable fragment types to their plain equivalents.
func normalize(t byte) byte {
	if t >= typeRecyclableFull && t <= typeRecyclableLast {
		return t - typeRecyclableFull + typeFull
	}
	return t
}
