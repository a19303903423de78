package blobship

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/tailer-backup/tailer/blobfs"
)

// A blob manifest lists the blobs a store references at one export's
// sequence number (layout.BlobManifestKey), so that verify and retention
// know what each kept point needs without restoring it. Byte layout,
// version 1 (integers little endian):
//
//	"TBMF"          4 bytes magic
//	version         1 byte, 1
//	count           8 bytes, number of hashes
//	hashes          count × 32 bytes, sorted ascending, no duplicates
//	sha256          32 bytes, SHA-256 of everything before it
//
// The size is therefore exactly 45 + 32 × count: a reader checks it
// against the object's size before allocating anything, and refuses a
// count above MaxManifestHashes.
const (
	manifestMagic   = "TBMF"
	manifestVersion = 1
	manifestHeader  = 4 + 1 + 8
	manifestTrailer = sha256.Size
)

// MaxManifestHashes bounds the blobs one manifest may list (2^26, 2 GiB of
// hashes): far above any mail store, and a bound on what a hostile object
// can make a reader allocate.
const MaxManifestHashes = 1 << 26

// MaxManifestBytes is the size of the largest manifest a reader accepts;
// download no more than this.
const MaxManifestBytes = manifestHeader + MaxManifestHashes*blobfs.HashLen + manifestTrailer

// ErrManifest is wrapped by every error about a manifest's bytes.
var ErrManifest = errors.New("not a valid blob manifest")

// EncodeManifest returns the manifest of hashes (in any order, duplicates
// allowed: they are sorted and folded).
func EncodeManifest(hashes []blobfs.Hash) ([]byte, error) {
	hs := slices.Clone(hashes)
	slices.SortFunc(hs, func(a, b blobfs.Hash) int { return bytes.Compare(a[:], b[:]) })
	hs = slices.Compact(hs)
	if len(hs) > MaxManifestHashes {
		return nil, fmt.Errorf("%d blobs: more than a manifest holds (%d)", len(hs), MaxManifestHashes)
	}
	out := make([]byte, 0, manifestHeader+len(hs)*blobfs.HashLen+manifestTrailer)
	out = append(out, manifestMagic...)
	out = append(out, manifestVersion)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(hs)))
	for _, h := range hs {
		out = append(out, h[:]...)
	}
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// DecodeManifest checks a manifest whole (size, version, checksum, order)
// and returns its hashes, sorted.
func DecodeManifest(data []byte) ([]blobfs.Hash, error) {
	if len(data) < manifestHeader+manifestTrailer || string(data[:4]) != manifestMagic {
		return nil, fmt.Errorf("%w: no TBMF header", ErrManifest)
	}
	if v := data[4]; v != manifestVersion {
		return nil, fmt.Errorf("%w: version %d (this tailer reads %d: upgrade it)", ErrManifest, v, manifestVersion)
	}
	n := binary.LittleEndian.Uint64(data[5:manifestHeader])
	if n > MaxManifestHashes {
		return nil, fmt.Errorf("%w: states %d hashes, more than %d", ErrManifest, n, MaxManifestHashes)
	}
	if want := manifestHeader + int(n)*blobfs.HashLen + manifestTrailer; len(data) != want {
		return nil, fmt.Errorf("%w: %d bytes, want %d for %d hashes (truncated?)", ErrManifest, len(data), want, n)
	}
	body := data[:len(data)-manifestTrailer]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], data[len(body):]) {
		return nil, fmt.Errorf("%w: checksum mismatch (corrupt)", ErrManifest)
	}
	out := make([]blobfs.Hash, n)
	for i := range out {
		copy(out[i][:], body[manifestHeader+i*blobfs.HashLen:])
		if i > 0 && bytes.Compare(out[i-1][:], out[i][:]) >= 0 {
			return nil, fmt.Errorf("%w: hashes not sorted and distinct at %d", ErrManifest, i)
		}
	}
	return out, nil
}
