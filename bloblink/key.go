// Package bloblink reads Stalwart's blob links, family k, to learn which
// blobs a store references at a point in time: the set a restore of a
// filesystem blob store must bring back, and the owner to name when one
// is missing.
//
// Key shapes (crates/store/src/write/key.rs, the same in 0.15 and 0.16;
// integers big endian):
//
//	hash(32)                                  commit: the blob is stored
//	hash(32) | account u32 | collection u8 | document u32   document link
//	hash(32) | id u64                         id link (a queued message)
//	hash(32) | account u32 | until u64        temporary link (upload, ingest)
//
// Stalwart writes a temporary link, then the blob, then the commit key;
// the message's batch then adds its document link and clears the
// temporary one. Its blob purge deletes an unlinked blob (no document or
// id link, no temporary link still valid) first, then its keys.
package bloblink

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tailer-backup/tailer/blobfs"
)

// Kind is what a k key says about its blob.
type Kind int

const (
	Commit    Kind = iota // the blob is stored (the bare hash)
	Document              // a document (an email, a sieve script, …) holds it
	ID                    // an id (a queued message) holds it
	Temporary             // held until a time (an upload, an ingest in progress)
)

func (k Kind) String() string {
	switch k {
	case Commit:
		return "commit"
	case Document:
		return "document"
	case ID:
		return "id"
	case Temporary:
		return "temporary"
	}
	return fmt.Sprintf("kind %d", int(k))
}

// Key lengths of each kind.
const (
	commitLen    = blobfs.HashLen
	idLen        = blobfs.HashLen + 8
	documentLen  = blobfs.HashLen + 4 + 1 + 4
	temporaryLen = blobfs.HashLen + 4 + 8
)

// Link is one decoded k key.
type Link struct {
	Hash blobfs.Hash
	Kind Kind
	// Account is the owner of a document or temporary link.
	Account uint32
	// Collection and Document name a document link's document.
	Collection uint8
	Document   uint32
	// ID is an id link's id (the queue id of a queued message).
	ID uint64
	// Until is a temporary link's expiry, in seconds since the Unix epoch.
	Until uint64
}

// ErrKey is wrapped by ParseKey for a key of no known shape.
var ErrKey = errors.New("not a blob link key")

// ParseKey decodes a k key.
func ParseKey(key []byte) (Link, error) {
	var l Link
	if len(key) < blobfs.HashLen {
		return l, fmt.Errorf("%w: %d bytes, shorter than a %d-byte blob hash", ErrKey, len(key), blobfs.HashLen)
	}
	copy(l.Hash[:], key)
	rest := key[blobfs.HashLen:]
	switch len(key) {
	case commitLen:
		l.Kind = Commit
	case idLen:
		l.Kind, l.ID = ID, binary.BigEndian.Uint64(rest)
	case documentLen:
		l.Kind, l.Account, l.Collection, l.Document = Document, binary.BigEndian.Uint32(rest), rest[4], binary.BigEndian.Uint32(rest[5:])
	case temporaryLen:
		l.Kind, l.Account, l.Until = Temporary, binary.BigEndian.Uint32(rest), binary.BigEndian.Uint64(rest[4:])
	default:
		return l, fmt.Errorf("%w: %d bytes (a link has %d, %d, %d or %d)", ErrKey, len(key), commitLen, idLen, documentLen, temporaryLen)
	}
	return l, nil
}

// Key encodes the link as Stalwart does.
func (l Link) Key() []byte {
	b := append(make([]byte, 0, temporaryLen), l.Hash[:]...)
	switch l.Kind {
	case ID:
		b = binary.BigEndian.AppendUint64(b, l.ID)
	case Document:
		b = binary.BigEndian.AppendUint32(append(binary.BigEndian.AppendUint32(b, l.Account), l.Collection), l.Document)
	case Temporary:
		b = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(b, l.Account), l.Until)
	}
	return b
}

// CommitKey is the commit key of h.
func CommitKey(h blobfs.Hash) []byte { return Link{Hash: h, Kind: Commit}.Key() }

// DocumentKey is the key linking h to a document.
func DocumentKey(h blobfs.Hash, account uint32, collection uint8, document uint32) []byte {
	return Link{Hash: h, Kind: Document, Account: account, Collection: collection, Document: document}.Key()
}

// TemporaryKey is the key holding h for account until a time.
func TemporaryKey(h blobfs.Hash, account uint32, until uint64) []byte {
	return Link{Hash: h, Kind: Temporary, Account: account, Until: until}.Key()
}

// IDKey is the key linking h to an id (a queued message).
func IDKey(h blobfs.Hash, id uint64) []byte { return Link{Hash: h, Kind: ID, ID: id}.Key() }
