package bloblink

import (
	"fmt"

	"github.com/tailer-backup/tailer/blobfs"
)

// Ref is one blob a store's k family mentions, with what holds it.
type Ref struct {
	Hash blobfs.Hash
	// Committed: the commit key is present, so Stalwart takes the blob as
	// stored (blob_exists) and will not write it again.
	Committed bool
	// Documents and IDs count document and id links; Temporaries counts
	// temporary links and LatestUntil is the latest expiry among them.
	Documents, IDs, Temporaries int
	LatestUntil                 uint64
	// Others counts keys of no shape this version knows (a newer
	// Stalwart's): they are taken to hold the blob, so none is dropped.
	Others int
	// Owner is the account of one link (a document link's if there is
	// one, else a temporary link's); HasOwner is false when only id links
	// (the queue) or none hold the blob. QueueID is one id link's id.
	Owner    uint32
	HasOwner bool
	QueueID  uint64
	// OwnerLink is the document link Owner comes from, when there is one.
	Collection uint8
	Document   uint32
}

// Held reports whether a link holds the blob at time now (seconds since
// the Unix epoch): a document or id link, or a temporary link expiring
// after now, as Stalwart's purge decides. now 0 counts every temporary
// link.
func (r Ref) Held(now uint64) bool {
	return r.Documents > 0 || r.IDs > 0 || r.Others > 0 || (r.Temporaries > 0 && (now == 0 || r.LatestUntil > now))
}

// Required reports whether a copy of the store at a point (at time now)
// needs the blob's file: it is committed and held. A committed blob no
// link holds is dead, awaiting the purge (which deletes the file before
// the keys, so it may already be gone); a held blob with no commit is
// still being written.
func (r Ref) Required(now uint64) bool { return r.Committed && r.Held(now) }

// OwnerString names who holds the blob, for a report of a missing one.
func (r Ref) OwnerString() string {
	switch {
	case r.Documents > 0:
		return fmt.Sprintf("account %d (collection %d, document %d)", r.Owner, r.Collection, r.Document)
	case r.HasOwner:
		return fmt.Sprintf("account %d (temporary link)", r.Owner)
	case r.IDs > 0:
		return fmt.Sprintf("queued message %d", r.QueueID)
	case r.Others > 0:
		return "a link of unknown shape"
	}
	return "no link"
}

// Collector gathers Refs from k keys given in key order (a family
// iteration), where all keys of one hash are adjacent.
type Collector struct {
	refs []Ref
	// Short counts keys shorter than a hash, which name no blob and are
	// skipped (Stalwart's purge fails on them).
	Short int
}

// Add takes the next k key. Its only error is keys out of order.
func (c *Collector) Add(key []byte) error {
	if len(key) < blobfs.HashLen {
		c.Short++
		return nil
	}
	l, err := ParseKey(key)
	unknown := err != nil
	n := len(c.refs)
	if n == 0 || c.refs[n-1].Hash != l.Hash {
		if n > 0 && string(c.refs[n-1].Hash[:]) > string(l.Hash[:]) {
			return fmt.Errorf("family k key %x arrives after hash %x: keys are not in order", key, c.refs[n-1].Hash)
		}
		c.refs = append(c.refs, Ref{Hash: l.Hash})
	}
	r := &c.refs[len(c.refs)-1]
	if unknown {
		r.Others++
		return nil
	}
	switch l.Kind {
	case Commit:
		r.Committed = true
	case Document:
		if r.Documents == 0 {
			r.Owner, r.HasOwner, r.Collection, r.Document = l.Account, true, l.Collection, l.Document
		}
		r.Documents++
	case ID:
		if r.IDs == 0 {
			r.QueueID = l.ID
		}
		r.IDs++
	case Temporary:
		if !r.HasOwner {
			r.Owner, r.HasOwner = l.Account, true
		}
		r.Temporaries++
		r.LatestUntil = max(r.LatestUntil, l.Until)
	}
	return nil
}

// Refs returns the blobs seen, in hash order.
func (c *Collector) Refs() []Ref { return c.refs }
