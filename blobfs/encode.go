package blobfs

import (
	"encoding/binary"

	"github.com/pierrec/lz4/v4"
)

// Encode returns the bytes Stalwart writes for payload: the payload and
// MarkerNone, or with compress an LZ4 block behind its u32 LE length and
// MarkerLZ4 (Stalwart's default for mail). The load generator writes
// these, and tests build files with them. A payload LZ4 cannot shrink is
// written raw.
func Encode(payload []byte, compress bool) []byte {
	if compress && len(payload) > 0 {
		out := make([]byte, 4+lz4.CompressBlockBound(len(payload))+1)
		binary.LittleEndian.PutUint32(out, uint32(len(payload)))
		n, err := lz4.CompressBlock(payload, out[4:], nil)
		if err == nil && n > 0 {
			out = out[:4+n]
			return append(out, MarkerLZ4)
		}
	}
	out := make([]byte, 0, len(payload)+1)
	return append(append(out, payload...), MarkerNone)
}
