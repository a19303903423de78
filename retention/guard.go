package retention

import (
	"context"

	"github.com/tailer-backup/tailer/blobfs"
)

// BlobGuard lets the process that ships blobs to the replica (`tailer
// run`, which holds its lease) take part in deleting blob objects. Without
// it, retention sees only what the bucket references, which misses two
// things the shipper knows: the segments and exports still in its spool
// (they reference blobs the bucket already holds), and its own record of
// which blobs the bucket holds (a deleted blob it still counts as held
// would never be uploaded again when Stalwart stores the same content
// anew).
//
// Apply calls BeginBlobGC before it lists the replica, DeleteBlobs once
// for the blob objects it would delete, and EndBlobGC (always, once
// BeginBlobGC succeeded) before it returns. When BeginBlobGC fails,
// Apply does the rest of retention and leaves blob objects for its next
// round.
type BlobGuard interface {
	// BeginBlobGC starts noting every blob the shipper references from
	// now on (a segment or export it queues, a blob object it queues) and
	// returns the blobs its queue references now (objects queued, not yet
	// uploaded). Anything queued before and gone from the queue by the
	// time it returns is in the replica, so Apply's listing, which comes
	// after, sees it.
	BeginBlobGC(ctx context.Context) (map[blobfs.Hash]bool, error)
	// DeleteBlobs calls decide while no new reference can be made,
	// passing whether a blob was referenced since BeginBlobGC; decide
	// deletes the others and returns every blob it tried to delete, which
	// the shipper must then count as absent from the replica (a later
	// reference uploads it again).
	DeleteBlobs(ctx context.Context, decide func(referenced func(blobfs.Hash) bool) ([]blobfs.Hash, error)) error
	// EndBlobGC stops noting references.
	EndBlobGC()
}
