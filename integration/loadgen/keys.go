package loadgen

import (
	"encoding/binary"

	"github.com/tailer-backup/tailer/bloblink"
)

// Stalwart collection ids used in p, i, b, n and l keys (0.12+).
const (
	collEmail         uint8 = 0
	collThread        uint8 = 1
	collCalendar      uint8 = 2
	collVanishedEmail uint8 = 251
	// quotaMarker is the collection byte of the per-account quota counter
	// in n (account|0xFF).
	quotaMarker uint8 = 0xFF
)

// Email property fields (last byte of a p key).
const (
	propMetadata uint8 = 0 // serialized message metadata
	propKeywords uint8 = 1 // keyword bit set
	propThread   uint8 = 2 // thread id and mailbox
	propEvent    uint8 = 0 // calendar event: iCalendar text
)

// Index fields (byte after the collection in i and b keys).
const (
	idxFrom       uint8 = 1
	idxSubject    uint8 = 2
	idxReceivedAt uint8 = 3
	idxSize       uint8 = 4
	tagMailbox    uint8 = 0x10
	tagKeyword    uint8 = 0x11
)

// schemaVersion016 is the value of p/0x00 in a Stalwart 0.16 store.
const schemaVersion016 = 6

func u32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// accountKey is n's per-account change id key: account u32 BE.
func accountKey(acct uint32) []byte { return u32(make([]byte, 0, 4), acct) }

// collectionKey is n's document id counter (account|collection) and, with
// quotaMarker, the quota counter (account|0xFF).
func collectionKey(acct uint32, coll uint8) []byte {
	return append(u32(make([]byte, 0, 5), acct), coll)
}

// changelogKey is the 13-byte l key: account u32 BE | collection | change id u64 BE.
func changelogKey(acct uint32, coll uint8, change uint64) []byte {
	b := make([]byte, 0, 13)
	return u64(append(u32(b, acct), coll), change)
}

// propertyKey is a p key: account | collection | document id | field.
func propertyKey(acct uint32, coll uint8, doc uint32, field uint8) []byte {
	b := make([]byte, 0, 10)
	return append(u32(append(u32(b, acct), coll), doc), field)
}

// indexKey is an i or b key: account | collection | field | term | document
// id. Stalwart stores these key-only (empty value).
func indexKey(acct uint32, coll, field uint8, term []byte, doc uint32) []byte {
	b := make([]byte, 0, 10+len(term))
	b = append(u32(b, acct), coll, field)
	return u32(append(b, term...), doc)
}

// linkKey is a k document link: blob hash | account | collection |
// document id (bloblink has every shape of k key).
func linkKey(hash [32]byte, acct, doc uint32) []byte {
	return bloblink.DocumentKey(hash, acct, collEmail, doc)
}

// itemID is how the changelog names an email: thread id in the high half.
func itemID(thread, doc uint32) uint64 { return uint64(thread)<<32 | uint64(doc) }

// changeSet is one l value for a sync collection. Encoded as Stalwart
// 0.12+ does: seven unsigned LEB128 counts, then the ids in that order.
type changeSet struct {
	containerInserts, containerUpdates, containerProps, containerDeletes []uint64
	itemInserts, itemUpdates, itemDeletes                                []uint64
}

func (c *changeSet) lists() [7][]uint64 {
	return [7][]uint64{c.containerInserts, c.containerUpdates, c.containerProps, c.containerDeletes,
		c.itemInserts, c.itemUpdates, c.itemDeletes}
}

func (c *changeSet) empty() bool {
	for _, l := range c.lists() {
		if len(l) > 0 {
			return false
		}
	}
	return true
}

func (c *changeSet) encode() []byte {
	lists := c.lists()
	var b []byte
	for _, l := range lists {
		b = binary.AppendUvarint(b, uint64(len(l)))
	}
	for _, l := range lists {
		for _, id := range l {
			b = binary.AppendUvarint(b, id)
		}
	}
	return b
}

// encodeVanished is the value of a vanished-items collection: concatenated
// LEB128 item ids.
func encodeVanished(ids []uint64) []byte {
	var b []byte
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
	}
	return b
}

// addUnique appends v to l unless it is already there (lists are tiny).
func addUnique(l []uint64, v uint64) []uint64 {
	for _, x := range l {
		if x == v {
			return l
		}
	}
	return append(l, v)
}
