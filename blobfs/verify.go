package blobfs

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pierrec/lz4/v4"
	"lukechampine.com/blake3"
)

// Markers Stalwart appends to every blob it writes (crates/store/src/
// dispatch/blob.rs): the last byte of the file says how the rest is
// encoded.
const (
	MarkerNone byte = 0x00 // the payload as is
	MarkerLZ4  byte = 0xA1 // u32 LE payload length, then one LZ4 block
)

// Sum is the BLAKE3-256 hash Stalwart names a payload by.
func Sum(payload []byte) Hash { return Hash(blake3.Sum256(payload)) }

// Status is what Verify found.
type Status int

const (
	// Incomplete: the file does not (yet) decode to a payload with its
	// hash. Stalwart may still be writing it (it writes in place); look
	// again later. A file that stays so is not a mail blob Stalwart will
	// finish (a write cut short by a crash, which the next delivery of the
	// same content rewrites, or a blob stored under a key that is not its
	// content's hash).
	Incomplete Status = iota
	// Complete: the decoded payload hashes to the file's name. Stalwart
	// never changes such a file again (it rewrites only files whose length
	// differs), so it can be copied once.
	Complete
)

func (s Status) String() string {
	if s == Complete {
		return "complete"
	}
	return "incomplete"
}

// Result is the outcome of verifying one blob file.
type Result struct {
	Status Status
	// Size is the file's length in bytes (payload, encoding, marker).
	Size int64
	// Marker is the file's last byte (0 for an empty file).
	Marker byte
	// Unmarked is true when the last byte is no marker Stalwart knows and
	// the whole file was hashed as the payload, as Stalwart's reader does.
	Unmarked bool
	// Why says, for an incomplete file, what did not match.
	Why string
}

// maxLZ4Ratio bounds what one LZ4 block can expand to per compressed byte
// (a match's length is extended by 255 per byte): an announced length
// above it is corruption, refused before it is allocated.
const maxLZ4Ratio = 255

// Decode returns the payload of a blob file's bytes, as Stalwart's reader
// does: the marker says how; a file ending in another byte is all payload
// (unmarked true); an empty file is an empty payload.
func Decode(data []byte) (payload []byte, unmarked bool, err error) {
	if len(data) == 0 {
		return data, false, nil
	}
	body := data[:len(data)-1]
	switch data[len(data)-1] {
	case MarkerNone:
		return body, false, nil
	case MarkerLZ4:
		if len(body) < 4 {
			return nil, false, fmt.Errorf("LZ4 blob of %d bytes has no length prefix", len(data))
		}
		size := binary.LittleEndian.Uint32(body)
		if uint64(size) > maxLZ4Ratio*uint64(len(body)-4)+maxLZ4Ratio {
			return nil, false, fmt.Errorf("LZ4 blob of %d bytes announces %d: more than LZ4 can expand to (corrupt)", len(body)-4, size)
		}
		out := make([]byte, size)
		n, err := lz4.UncompressBlock(body[4:], out)
		if err != nil {
			return nil, false, fmt.Errorf("decompress LZ4 blob (%d bytes, %d announced): %w", len(body)-4, size, err)
		}
		if uint32(n) != size {
			return nil, false, fmt.Errorf("LZ4 blob decompressed to %d bytes, its prefix announces %d", n, size)
		}
		return out, false, nil
	}
	return data, true, nil
}

// VerifyBytes checks a blob file's bytes against the hash it is named by.
// A mismatch is Incomplete, not an error: the bytes may be a snapshot of a
// file being written.
func VerifyBytes(data []byte, h Hash) Result {
	r := Result{Size: int64(len(data))}
	if len(data) == 0 {
		// Stalwart always writes at least the marker: an empty file has
		// just been created.
		r.Why = "empty file"
		return r
	}
	r.Marker = data[len(data)-1]
	payload, unmarked, err := Decode(data)
	r.Unmarked = unmarked
	switch {
	case err != nil:
		r.Why = err.Error()
	case Sum(payload) != h:
		r.Why = fmt.Sprintf("payload of %d bytes hashes to %s", len(payload), Sum(payload).Name())
	default:
		r.Status = Complete
	}
	return r
}

// Verify reads the blob file at path and checks it against h. Raw blobs
// (the common case for large mail) are hashed as they are read, without
// holding the file in memory. The error is for I/O only and wraps
// os.ErrNotExist when the file is gone (purged meanwhile).
func Verify(path string, h Hash) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, fmt.Errorf("open blob %s: %w", path, err)
	}
	defer f.Close()
	return VerifyFile(f, h)
}

// VerifyFile is Verify on a file already open, read from its start: a
// caller that copies the file after verifying it keeps it open, so the
// bytes it copies are those of the file it verified (the same inode
// whatever a purge does to the name meanwhile).
func VerifyFile(f *os.File, h Hash) (Result, error) {
	path := f.Name()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Result{}, fmt.Errorf("read blob %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return Result{}, fmt.Errorf("stat blob %s: %w", path, err)
	}
	size := st.Size()
	if size == 0 {
		return VerifyBytes(nil, h), nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return Result{}, fmt.Errorf("read blob %s: %w", path, err)
	}
	if last[0] != MarkerNone {
		data, err := io.ReadAll(f)
		if err != nil {
			return Result{}, fmt.Errorf("read blob %s: %w", path, err)
		}
		return VerifyBytes(data, h), nil
	}
	hs := blake3.New(HashLen, nil)
	n, err := io.Copy(hs, bufio.NewReaderSize(io.LimitReader(f, size-1), 256<<10))
	if err != nil {
		return Result{}, fmt.Errorf("read blob %s: %w", path, err)
	}
	r := Result{Size: size, Marker: MarkerNone}
	var got Hash
	copy(got[:], hs.Sum(nil))
	switch {
	case n != size-1:
		r.Why = fmt.Sprintf("file shrank from %d to %d bytes while read", size, n+1)
	case got != h:
		r.Why = fmt.Sprintf("payload of %d bytes hashes to %s", n, got.Name())
	default:
		r.Status = Complete
	}
	return r, nil
}

// Readiness is whether a blob file can be copied now.
type Readiness int

const (
	// NotReady: look again later; Stalwart may still be writing it.
	NotReady Readiness = iota
	// Ready: the file is final.
	Ready
	// Abandoned: the file has not matched its name for longer than the
	// settle time. Stalwart will not finish it: a write cut short (the
	// next delivery of the same content rewrites it, as its length
	// differs) or a blob kept under a key that is not its hash. Callers
	// report it and look again only at their periodic scan.
	Abandoned
)

func (r Readiness) String() string {
	switch r {
	case Ready:
		return "ready"
	case Abandoned:
		return "abandoned"
	}
	return "not ready"
}

// Ready applies the completeness rule to a verified file last modified at
// mod: a file that hashes right and ends in a marker is final at once
// (Stalwart writes the marker last, in the same write); one that hashes
// right without a marker (blobs of Stalwart versions before markers, or a
// write that stopped just before its last byte) only once it has not
// changed for settle; one that does not hash right is not ready, and
// abandoned after settle.
func (r Result) Ready(mod, now time.Time, settle time.Duration) Readiness {
	settled := now.Sub(mod) >= settle
	switch {
	case r.Status == Complete && (!r.Unmarked || settled):
		return Ready
	case r.Status == Incomplete && settled:
		return Abandoned
	}
	return NotReady
}
