package changelog

import (
	"fmt"
	"math"

	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
)

// NoFamily is the family id to pass to Scan and NewLabeler when the source
// store has no `l` family (FamilyID returned ok=false). RocksDB numbers
// families from 0 upwards, so it never names a real family: batches are
// still checked, and no changes are found.
const NoFamily uint32 = math.MaxUint32

// FamilyID returns the id of the changelog family `l` in a segment's
// family table. Ids are the source store's own and differ between stores,
// so the id must be looked up per segment, never assumed.
func FamilyID(fams []segment.Family) (uint32, bool) {
	for _, f := range fams {
		if f.Name == stalwart.ChangelogFamily {
			return f.ID, true
		}
	}
	return NoFamily, false
}

// Change is one change as tailer records it: one put in `l`, which is what
// `tailer changes` prints one line for.
//
// Inserts, Updates and Deletes count items and containers together:
// Inserts = item inserts + container inserts; Updates = item updates +
// container updates + container property changes; Deletes = item deletes +
// container deletes. For a vanished collection Deletes is the number of
// vanished items. They are 0 for truncation markers, opaque and malformed
// entries.
type Change struct {
	// Seq is the sequence number of the batch (its first record), as in
	// segment.Batch; LastSeq is that of its last record. Restoring to
	// LastSeq gives the state just after the change: a restore to Seq
	// stops before the batch when it holds more than one record.
	Seq     uint64
	LastSeq uint64
	// CaptureUnixMs is tailer's clock when it saw the batch: change ids
	// carry no time.
	CaptureUnixMs int64
	Account       uint32
	Collection    Collection
	ChangeID      uint64
	Inserts       int
	Updates       int
	Deletes       int
	// Truncation marks the empty value the purge writes at the first change
	// id it keeps; it is not a change and its ChangeID is an old one.
	Truncation bool
	// Opaque marks a share notification or an unknown collection, whose
	// value is not a change set.
	Opaque bool
	// Malformed marks an entry whose key decoded but whose value did not;
	// it is counted in Stats.Malformed and kept so the change id is seen.
	Malformed bool
}

// Purge is a DeleteRange seen in `l`: Stalwart's changelog purge (one
// account and collection, [0, first kept change)) or a wider reset.
//
// The range is given as the 13-byte keys it covers, from (Account,
// Collection, FromChange) included to (EndAccount, EndCollection,
// ToChange) excluded, or to the end of the key space when ToEnd is set.
// Range keys that are not 13 bytes are converted exactly: a shorter key is
// padded with zero bytes, a longer one rounded up to the next 13-byte key,
// which selects the same 13-byte keys. For Stalwart's own purge End* equal
// Account and Collection and the purged changes are [FromChange, ToChange).
type Purge struct {
	Seq           uint64 // sequence number of the batch, as in segment.Batch
	Account       uint32
	Collection    Collection
	FromChange    uint64
	EndAccount    uint32
	EndCollection Collection
	ToChange      uint64
	ToEnd         bool
}

// SingleCollection reports whether the purge stays within one account and
// collection, as Stalwart's changelog purge does; then it removes the
// changes [FromChange, ToChange) of Account and Collection.
func (p Purge) SingleCollection() bool {
	return !p.ToEnd && p.EndAccount == p.Account && p.EndCollection == p.Collection
}

// Covers reports whether the purge removes the entry with key k.
func (p Purge) Covers(k Key) bool {
	x := boundOf(k)
	lo := boundOf(Key{p.Account, p.Collection, p.FromChange})
	if compareBounds(x, lo) < 0 {
		return false
	}
	return p.ToEnd || compareBounds(x, boundOf(Key{p.EndAccount, p.EndCollection, p.ToChange})) < 0
}

// Stats counts the `l` records of one or more batches by what they were.
// Scan returns them instead of failing so a caller can log or export them.
type Stats struct {
	Entries            int // puts in `l`, decodable or not
	Malformed          int // puts whose key or value did not decode
	UnknownCollections int // puts with a well-formed key of a collection this package does not know
	Truncations        int // empty values: purge truncation markers
	Purges             int // DeleteRanges in `l`
	Other              int // other records in `l` (deletes, merges...): Stalwart writes none; restore replays them anyway
}

// Add adds o to s, so that per-batch stats sum to a segment's.
func (s *Stats) Add(o Stats) {
	s.Entries += o.Entries
	s.Malformed += o.Malformed
	s.UnknownCollections += o.UnknownCollections
	s.Truncations += o.Truncations
	s.Purges += o.Purges
	s.Other += o.Other
}

// Scan reads the `l` records of one WriteBatch. lFamily is the column
// family id of `l` in the source store (FamilyID; NoFamily when it has
// none). It returns the changes (one per put whose key decodes, including
// truncation markers, opaque and malformed-value entries, flagged) and the
// purges in batch order; records of other families are skipped.
//
// Undecodable entries are counted in Stats, never returned as errors: a
// malformed value or an unknown collection must not stop tailing. The error
// is only for a batch that is not a valid WriteBatch (it wraps
// wbatch.ErrCorrupt); then nothing else is returned.
func Scan(b segment.Batch, lFamily uint32) ([]Change, []Purge, Stats, error) {
	h, err := wbatch.ReadHeader(b.Data)
	if err != nil {
		return nil, nil, Stats{}, err
	}
	lastSeq := b.Seq + uint64(h.Count) - 1
	if h.Count == 0 {
		lastSeq = b.Seq
	}
	var (
		changes []Change
		purges  []Purge
		st      Stats
	)
	err = wbatch.Each(b.Data, func(r wbatch.Record) error {
		if !r.Op.Counted() || r.CF != lFamily {
			return nil
		}
		switch r.Op {
		case wbatch.OpPut:
			st.Entries++
			c, ok := scanPut(r.Key, r.Value, &st)
			if ok {
				c.Seq, c.LastSeq, c.CaptureUnixMs = b.Seq, lastSeq, b.CaptureUnixMs
				changes = append(changes, c)
			}
		case wbatch.OpDeleteRange:
			st.Purges++
			p := purgeOf(r.Key, r.Value)
			p.Seq = b.Seq
			purges = append(purges, p)
		default:
			st.Other++
		}
		return nil
	})
	if err != nil {
		return nil, nil, Stats{}, fmt.Errorf("changelog scan of batch at seq %d: %w", b.Seq, err)
	}
	return changes, purges, st, nil
}

// scanPut turns one put into a Change and counts it; ok is false when the
// key does not decode (there is no account or change id to report).
func scanPut(key, value []byte, st *Stats) (Change, bool) {
	e, err := DecodeEntry(key, value)
	if err != nil && len(key) != KeyLen {
		st.Malformed++
		return Change{}, false
	}
	c := Change{Account: e.Account, Collection: e.Collection, ChangeID: e.ChangeID}
	if !e.Collection.Known() {
		st.UnknownCollections++
	}
	switch {
	case err != nil:
		st.Malformed++
		c.Malformed = true
	case e.Truncation:
		st.Truncations++
		c.Truncation = true
	case e.Changes != nil:
		c.Inserts, c.Updates, c.Deletes = e.Changes.Inserts(), e.Changes.Updates(), e.Changes.Deletes()
	case e.Collection.IsVanished():
		c.Deletes = len(e.Vanished)
	default:
		c.Opaque = true
	}
	return c, true
}

// bound is a position in the space of 13-byte keys; overflow means past
// the last one.
type bound struct {
	key      [KeyLen]byte
	overflow bool
}

func boundOf(k Key) bound {
	var b bound
	copy(b.key[:], EncodeKey(k))
	return b
}

func compareBounds(a, b bound) int {
	switch {
	case a.overflow && b.overflow:
		return 0
	case a.overflow:
		return 1
	case b.overflow:
		return -1
	}
	for i := range a.key {
		if a.key[i] != b.key[i] {
			if a.key[i] < b.key[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// keyBound returns the first 13-byte key that is >= k in RocksDB's
// bytewise order. For a start key that is the first key in the range, and
// for an (exclusive) end key the first key past it: the same 13-byte keys
// lie in [start, end) and [keyBound(start), keyBound(end)).
func keyBound(k []byte) bound {
	var b bound
	copy(b.key[:], k) // shorter keys: zero padding is the smallest extension
	if len(k) <= KeyLen {
		return b
	}
	// A longer key sorts after its 13-byte prefix: round up.
	for i := KeyLen - 1; i >= 0; i-- {
		b.key[i]++
		if b.key[i] != 0 {
			return b
		}
	}
	b.overflow = true
	return b
}

func purgeOf(start, end []byte) Purge {
	lo, hi := keyBound(start), keyBound(end)
	if compareBounds(hi, lo) < 0 {
		hi = lo // RocksDB refuses start > end; treat it as empty
	}
	if lo.overflow {
		// Nothing at or after start: an empty range at the last key.
		lo = bound{key: [KeyLen]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
		hi = lo
	}
	from, _ := DecodeKey(lo.key[:])
	to, _ := DecodeKey(hi.key[:])
	p := Purge{
		Account: from.Account, Collection: from.Collection, FromChange: from.ChangeID,
		EndAccount: to.Account, EndCollection: to.Collection, ToChange: to.ChangeID,
	}
	if hi.overflow {
		p = Purge{Account: p.Account, Collection: p.Collection, FromChange: p.FromChange, ToEnd: true}
	}
	return p
}
