package changelog

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// KeyLen is the length of every `l` key Stalwart 0.12+ writes.
const KeyLen = 13

// Key is a decoded `l` key. Change ids are a per-account counter shared by
// all collections of the account: every entry written in one transaction
// of an account carries the same id.
type Key struct {
	Account    uint32
	Collection Collection
	ChangeID   uint64
}

// String formats k for error messages and logs.
func (k Key) String() string {
	return fmt.Sprintf("account %d %s change %d", k.Account, k.Collection, k.ChangeID)
}

// DecodeKey decodes an `l` key. It wants exactly KeyLen bytes: anything
// else is not a changelog entry this package understands, and accepting a
// prefix would hide a layout change.
func DecodeKey(b []byte) (Key, error) {
	if len(b) != KeyLen {
		return Key{}, fmt.Errorf("changelog key is %d bytes, want %d (account u32 | collection u8 | change id u64)", len(b), KeyLen)
	}
	return Key{
		Account:    binary.BigEndian.Uint32(b[0:4]),
		Collection: Collection(b[4]),
		ChangeID:   binary.BigEndian.Uint64(b[5:13]),
	}, nil
}

// EncodeKey is the inverse of DecodeKey; tests and tools that look keys
// up in `l` use it.
func EncodeKey(k Key) []byte {
	b := make([]byte, KeyLen)
	binary.BigEndian.PutUint32(b[0:4], k.Account)
	b[4] = byte(k.Collection)
	binary.BigEndian.PutUint64(b[5:13], k.ChangeID)
	return b
}

// ChangeSet is the value of a sync-collection entry: the ids of the
// containers (mailboxes, calendars, address books, folders) and items
// (emails, events, contacts, files...) a transaction inserted, updated or
// deleted. Item ids are (prefix << 32) | document id; for Email the prefix
// is the thread id.
type ChangeSet struct {
	ContainerInserts         []uint64
	ContainerUpdates         []uint64
	ContainerPropertyChanges []uint64
	ContainerDeletes         []uint64
	ItemInserts              []uint64
	ItemUpdates              []uint64
	ItemDeletes              []uint64
}

// lists returns pointers to the seven lists in encoding order.
func (cs *ChangeSet) lists() [7]*[]uint64 {
	return [7]*[]uint64{
		&cs.ContainerInserts, &cs.ContainerUpdates, &cs.ContainerPropertyChanges, &cs.ContainerDeletes,
		&cs.ItemInserts, &cs.ItemUpdates, &cs.ItemDeletes,
	}
}

// listName names the seven lists in encoding order, for error messages.
func listName(i int) string {
	switch i {
	case 0:
		return "container inserts"
	case 1:
		return "container updates"
	case 2:
		return "container property changes"
	case 3:
		return "container deletes"
	case 4:
		return "item inserts"
	case 5:
		return "item updates"
	default:
		return "item deletes"
	}
}

// Inserts returns the number of inserted containers and items.
func (cs *ChangeSet) Inserts() int { return len(cs.ContainerInserts) + len(cs.ItemInserts) }

// Updates returns the number of updated containers and items; a container
// property change counts as an update.
func (cs *ChangeSet) Updates() int {
	return len(cs.ContainerUpdates) + len(cs.ContainerPropertyChanges) + len(cs.ItemUpdates)
}

// Deletes returns the number of deleted containers and items.
func (cs *ChangeSet) Deletes() int { return len(cs.ContainerDeletes) + len(cs.ItemDeletes) }

// EncodeChangeSet encodes cs as Stalwart does: the seven counts, then the
// ids, all unsigned LEB128. Tests and the load generator's checks use it
// to build values independently of any writer.
func EncodeChangeSet(cs ChangeSet) []byte {
	ls := cs.lists()
	n := len(ls)
	for _, l := range ls {
		n += len(*l) * 2
	}
	b := make([]byte, 0, n)
	for _, l := range ls {
		b = binary.AppendUvarint(b, uint64(len(*l)))
	}
	for _, l := range ls {
		for _, id := range *l {
			b = binary.AppendUvarint(b, id)
		}
	}
	return b
}

// EncodeVanished encodes the value of a vanished-items entry: the item ids
// concatenated, unsigned LEB128. It exists for tests, like EncodeChangeSet.
func EncodeVanished(ids []uint64) []byte {
	b := make([]byte, 0, len(ids)*2)
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
	}
	return b
}

// Entry is one decoded `l` record. Exactly one of Truncation, Changes,
// Vanished and Opaque describes the value, so callers switch on them
// instead of on the collection.
type Entry struct {
	Key
	// Truncation is set for an empty value: the marker Stalwart's purge
	// writes at the first change id it keeps. It records no change; its
	// change id is an old one.
	Truncation bool
	// Changes is the change set of a sync collection; nil for truncation
	// markers, vanished collections, share notifications and unknown
	// collections.
	Changes *ChangeSet
	// Vanished lists the item ids of a vanished-items entry.
	Vanished []uint64
	// Opaque is set for a share notification (a serialized object this
	// package does not interpret) and for a collection it does not know.
	Opaque bool
}

// String summarises e for logs and test failures. Without it fmt would
// print only the embedded Key.
func (e Entry) String() string {
	switch {
	case e.Truncation:
		return e.Key.String() + ": truncation marker"
	case e.Changes != nil:
		return fmt.Sprintf("%v: %d inserts, %d updates, %d deletes", e.Key, e.Changes.Inserts(), e.Changes.Updates(), e.Changes.Deletes())
	case e.Vanished != nil:
		return fmt.Sprintf("%v: %d vanished items", e.Key, len(e.Vanished))
	case e.Opaque:
		return e.Key.String() + ": opaque value"
	}
	return e.Key.String()
}

// errTruncatedVarint is returned (wrapped) for a LEB128 number cut short
// or longer than 64 bits.
var errTruncatedVarint = errors.New("truncated or overlong LEB128")

// DecodeEntry decodes an `l` record. The error names the entry and what is
// malformed: the key length, a truncated or overlong LEB128 and at which
// byte, counts that claim more ids than the value has bytes, or trailing
// bytes. On a value error the returned Entry still holds the decoded Key.
// Empty values are truncation markers whatever the collection; values of
// unknown collections are returned Opaque without error so callers decide
// how to count them.
func DecodeEntry(key, value []byte) (Entry, error) {
	k, err := DecodeKey(key)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Key: k}
	switch {
	case len(value) == 0:
		e.Truncation = true
	case k.Collection.HasChangeSets():
		cs, err := decodeChangeSet(value)
		if err != nil {
			return Entry{Key: k}, fmt.Errorf("changelog entry %v: %w", k, err)
		}
		e.Changes = cs
	case k.Collection.IsVanished():
		ids, err := decodeVanished(value)
		if err != nil {
			return Entry{Key: k}, fmt.Errorf("changelog entry %v: %w", k, err)
		}
		e.Vanished = ids
	default:
		e.Opaque = true
	}
	return e, nil
}

// uvarint reads one LEB128 number at b[off:].
func uvarint(b []byte, off int) (uint64, int, error) {
	v, n := binary.Uvarint(b[off:])
	if n <= 0 {
		return 0, 0, fmt.Errorf("%w at byte %d of %d", errTruncatedVarint, off, len(b))
	}
	return v, off + n, nil
}

func decodeChangeSet(b []byte) (*ChangeSet, error) {
	var counts [7]uint64
	off := 0
	var total uint64
	for i := range counts {
		if off >= len(b) {
			return nil, fmt.Errorf("change set: value of %d bytes ends before the count of %s", len(b), listName(i))
		}
		c, next, err := uvarint(b, off)
		if err != nil {
			return nil, fmt.Errorf("change set: count of %s: %w", listName(i), err)
		}
		// Every id takes at least one byte: a count above what is left
		// is malformed, and checking it here bounds the allocation.
		if c > uint64(len(b)-next) {
			return nil, fmt.Errorf("change set: count of %s is %d at byte %d, more than the %d bytes left", listName(i), c, off, len(b)-next)
		}
		counts[i], total, off = c, total+c, next
	}
	if total > uint64(len(b)-off) {
		return nil, fmt.Errorf("change set: counts add up to %d ids, more than the %d bytes left after them", total, len(b)-off)
	}
	cs := &ChangeSet{}
	backing := make([]uint64, total)
	for i, l := range cs.lists() {
		if counts[i] == 0 {
			continue
		}
		ids := backing[:counts[i]:counts[i]]
		backing = backing[counts[i]:]
		for j := range ids {
			v, next, err := uvarint(b, off)
			if err != nil {
				return nil, fmt.Errorf("change set: id %d of %s: %w", j, listName(i), err)
			}
			ids[j], off = v, next
		}
		*l = ids
	}
	if off != len(b) {
		return nil, fmt.Errorf("change set: %d trailing bytes after the last id at byte %d", len(b)-off, off)
	}
	return cs, nil
}

func decodeVanished(b []byte) ([]uint64, error) {
	// Each LEB128 number ends with exactly one byte below 0x80: counting
	// those gives the length to allocate, bounded by len(b).
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	ids := make([]uint64, 0, n)
	for off := 0; off < len(b); {
		v, next, err := uvarint(b, off)
		if err != nil {
			return nil, fmt.Errorf("vanished item %d: %w", len(ids), err)
		}
		ids, off = append(ids, v), next
	}
	return ids, nil
}
