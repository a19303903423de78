package blobship

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// Object format, version 1: one blob file of Stalwart's store, byte for
// byte (marker included, so a restore writes back exactly what Stalwart
// wrote), behind a fixed header:
//
//	offset  size  field
//	0       4     magic "TBLB"
//	4       1     format version (1)
//	5       1     encoding: 0 stored, 1 one zstd frame
//	6       8     length of the blob file, u64 little endian
//	14      8     xxhash64 of the blob file's bytes, u64 little endian
//	22      …     body: the file's bytes, stored or compressed
//
// The body is zstd-compressed only when that saves at least an eighth
// (Stalwart's LZ4-compressed blobs barely shrink again) and the file is
// at most maxZstdRatio × the compressed body + ratioSlack: a reader
// refuses a larger announced length before allocating it, so an object
// of a few bytes cannot make it allocate a gigabyte. The checksum
// covers the file's bytes, so a damaged object is caught whatever its
// encoding and before Stalwart's own check (the BLAKE3 name) is applied.
// Encryption, like for every other object, is the replica's
// (uploader.Encrypted wraps whatever is Put).
const (
	headerLen = 22
	version   = 1

	encStored = 0
	encZstd   = 1
)

var magic = [4]byte{'T', 'B', 'L', 'B'}

// MaxBlobSize bounds the file length a header may announce, so a damaged
// header cannot make Decode allocate without limit. Stalwart's default
// message size limit is 75 MB; 1 GiB leaves room for any configuration.
const MaxBlobSize = 1 << 30

// maxZstdRatio and ratioSlack bound the expansion of a zstd body (as in
// segments): real mail compresses far less; a file that would compress
// more is stored as is.
const (
	maxZstdRatio = 128
	ratioSlack   = 64 << 10
)

// decoderMinMemory is the least memory the zstd decoder may use: a frame's
// window can be larger than its content (the encoder's window is 8 MiB).
const decoderMinMemory = 16 << 20

// ErrFormat is wrapped by Decode for an object that is not a valid blob
// object (damaged, truncated, or from a newer tailer).
var ErrFormat = errors.New("not a valid blob object")

// Encoder encodes blob objects. It holds a zstd encoder, reused across
// calls; it is not safe for concurrent use.
type Encoder struct {
	zw *zstd.Encoder
}

// NewEncoder returns an Encoder.
func NewEncoder() (*Encoder, error) {
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return &Encoder{zw: zw}, nil
}

// Encode returns the object holding a blob file's bytes.
func (e *Encoder) Encode(file []byte) []byte {
	z := e.zw.EncodeAll(file, make([]byte, 0, len(file)/2))
	body, enc := file, byte(encStored)
	if compresses(int64(len(file)), int64(len(z))) {
		body, enc = z, encZstd
	}
	out := make([]byte, headerLen, headerLen+len(body))
	copy(out, magic[:])
	out[4], out[5] = version, enc
	binary.LittleEndian.PutUint64(out[6:], uint64(len(file)))
	binary.LittleEndian.PutUint64(out[14:], xxhash.Sum64(file))
	return append(out, body...)
}

// compresses says whether a file of size bytes is stored as its zstd
// frame of compressed bytes: when that saves an eighth, and within the
// expansion ratio a reader accepts.
func compresses(size, compressed int64) bool {
	return compressed <= size-size/8 && uint64(size) <= maxZstdRatio*uint64(compressed)+ratioSlack
}

// Decode returns the blob file's bytes an object holds, checked against
// its length and checksum. name (the object's key) is for errors.
func Decode(name string, obj []byte) ([]byte, error) {
	if len(obj) < headerLen || !bytes.Equal(obj[:4], magic[:]) {
		return nil, fmt.Errorf("%w: %s has no blob object header", ErrFormat, name)
	}
	if obj[4] != version {
		return nil, fmt.Errorf("%w: %s is format version %d; this tailer reads version %d (upgrade tailer)", ErrFormat, name, obj[4], version)
	}
	size := binary.LittleEndian.Uint64(obj[6:])
	sum := binary.LittleEndian.Uint64(obj[14:])
	if size > MaxBlobSize {
		return nil, fmt.Errorf("%w: %s announces a %d-byte blob, more than %d", ErrFormat, name, size, MaxBlobSize)
	}
	body := obj[headerLen:]
	var file []byte
	switch obj[5] {
	case encStored:
		file = body
	case encZstd:
		if size > maxZstdRatio*uint64(len(body))+ratioSlack {
			return nil, fmt.Errorf("%w: %s announces %d bytes from %d compressed, more than a blob object expands to", ErrFormat, name, size, len(body))
		}
		zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(max(2*size, decoderMinMemory)))
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		defer zr.Close()
		file, err = zr.DecodeAll(body, make([]byte, 0, size))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: decompress: %v", ErrFormat, name, err)
		}
	default:
		return nil, fmt.Errorf("%w: %s has encoding %d, which version %d does not define", ErrFormat, name, obj[5], version)
	}
	if uint64(len(file)) != size {
		return nil, fmt.Errorf("%w: %s holds %d bytes, its header announces %d", ErrFormat, name, len(file), size)
	}
	if xxhash.Sum64(file) != sum {
		return nil, fmt.Errorf("%w: %s fails its checksum (damaged in storage)", ErrFormat, name)
	}
	return file, nil
}

// readObject reads a whole object, refusing one larger than any valid
// blob object can be.
func readObject(r io.Reader, name string) ([]byte, error) {
	obj, err := io.ReadAll(io.LimitReader(r, headerLen+MaxBlobSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(obj) > headerLen+MaxBlobSize {
		return nil, fmt.Errorf("%w: %s is larger than any blob object", ErrFormat, name)
	}
	return obj, nil
}
