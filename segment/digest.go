package segment

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
)

// Digest computes the per-family digest recorded in export trailers and
// used by restore and tests to prove that a restored DB holds exactly the
// keys and values of the source. Its definition is part of the format: the
// lowercase hex SHA-256 of, for each key in bytewise key order,
//
//	uvarint(len(key)) key uvarint(len(value)) value
//
// (uvarint as in encoding/binary.AppendUvarint). The lengths make the
// encoding unambiguous, so moving a byte from a key to its value changes the
// digest. Feed keys in order: the digest does not sort. The zero value is not
// usable; call NewDigest.
type Digest struct {
	h    hash.Hash
	keys uint64
	buf  [binary.MaxVarintLen64]byte
}

// NewDigest returns a digest of nothing (no keys).
func NewDigest() *Digest {
	return &Digest{h: sha256.New()}
}

// Add feeds one key and its value. Keys must come in strictly increasing
// bytewise order for the result to match an export's digest.
func (d *Digest) Add(key, value []byte) {
	d.h.Write(binary.AppendUvarint(d.buf[:0], uint64(len(key))))
	d.h.Write(key)
	d.h.Write(binary.AppendUvarint(d.buf[:0], uint64(len(value))))
	d.h.Write(value)
	d.keys++
}

// Keys returns how many keys were added, the count stored beside the digest.
func (d *Digest) Keys() uint64 { return d.keys }

// Sum returns the digest as 64 lowercase hex digits. It does not change the
// state, so more keys may be added afterwards.
func (d *Digest) Sum() string {
	var out [sha256.Size]byte
	return hex.EncodeToString(d.h.Sum(out[:0]))
}
