package layout

import (
	"sort"
	"strings"

	"github.com/tailer-backup/tailer/blobfs"
)

// BlobsRoot is the key prefix of the blob objects of a filesystem blob
// store (Stalwart's "fs" blob store, where the mail itself lives):
//
//	blobs/<NAME>
//
// NAME is the blob's file name in Stalwart's store (blobfs: its BLAKE3
// hash in Stalwart's base32). Blobs are content addressed and never
// change, so each is uploaded once and shared by every generation and
// point in time; which of them a point needs is read from the store's
// family k at that point (bloblink), not from the bucket.
const BlobsRoot = "blobs/"

// BlobKey is the key of the blob object of hash h.
func BlobKey(h blobfs.Hash) string { return BlobsRoot + h.Name() }

// ParseBlobKey returns the hash a blob object's key names. Only keys
// BlobKey writes are accepted: one hash has one key, so a LIST says
// exactly which blobs the bucket holds.
func ParseBlobKey(key string) (blobfs.Hash, bool) {
	name, ok := strings.CutPrefix(key, BlobsRoot)
	if !ok {
		return blobfs.Hash{}, false
	}
	h, err := blobfs.ParseName(name)
	return h, err == nil
}

// Blob is one blob object found in a LIST.
type Blob struct {
	Object
	Hash blobfs.Hash
}

// ParseBlobs picks the blob objects out of a LIST (of BlobsRoot, or of
// everything), sorted by key, and returns the keys under BlobsRoot that
// are not blob keys, for callers to warn about.
func ParseBlobs(objs []Object) (blobs []Blob, unknown []string) {
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, BlobsRoot) {
			continue
		}
		h, ok := ParseBlobKey(o.Key)
		if !ok {
			unknown = append(unknown, o.Key)
			continue
		}
		blobs = append(blobs, Blob{Object: o, Hash: h})
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Key < blobs[j].Key })
	return blobs, unknown
}
