package loadgen

import (
	"slices"
	"time"
)

// model is the generator's in-memory picture of what it wrote: enough to
// choose realistic targets (expunge a message that exists, purge a
// changelog that is long, delete a counter that is zero) and for tests to
// know what the store must hold. Every container is iterated in a fixed
// order so that the model, like the store, is a function of the seed.
type model struct {
	accounts []*account // accounts[id-1]
	// blobRefs counts the live links per blob hash; a blob at 0 is an
	// orphan that a later blob purge deletes. orphans lists them oldest
	// first and died (same length) when each lost its last link, for the
	// purge delay.
	blobRefs map[[32]byte]int
	orphans  [][32]byte
	died     []time.Time
	// changes lists, per account and collection, the change ids present in
	// l (oldest first; the first one may be a truncation marker).
	changes map[clKey][]uint64
	// purged records every changelog purge, for tests.
	purged []purge
	// counters holds every merge counter that can go back to zero (quotas
	// in n, queue quotas in u, rate counters in y), keyed by family letter
	// + key, and counterKeys the same keys sorted.
	counters    map[string]*counter
	counterKeys []string
	queue       []queued
	mem         []memValue
	tasks       [][]byte
	deleted     [][]byte
	memSeq      uint64
	queueSeq    uint64
}

type account struct {
	id       uint32
	changeID uint64
	nextID   [3]uint32 // next document id of Email, Thread, Calendar
	docs     []*doc
	threads  map[uint32]int // live emails per thread
	events   []uint32       // live calendar events
	quota    int64          // sum of live emails' blob sizes
}

type doc struct {
	id, thread, mailbox uint32
	keywords            uint8 // bit k set: keyword k
	size                int
	hash                [32]byte
}

type clKey struct {
	acct uint32
	coll uint8
}

type purge struct {
	key      clKey
	keepFrom uint64 // first kept change id, now an empty marker
	removed  []uint64
}

type counter struct {
	v       int64
	present bool // false after a cleanup deleted it
}

type queued struct {
	key  []byte
	uKey []byte
	size int64
}

type memValue struct {
	key     []byte
	putOnce bool // written by exactly one Put: SingleDelete is allowed
}

func newModel(n int) *model {
	m := &model{
		blobRefs: make(map[[32]byte]int),
		changes:  make(map[clKey][]uint64),
		counters: make(map[string]*counter),
	}
	for i := 0; i < n; i++ {
		m.accounts = append(m.accounts, &account{id: uint32(i + 1), threads: make(map[uint32]int)})
	}
	return m
}

func (m *model) account(id uint32) *account { return m.accounts[id-1] }

// counter returns the counter for family fam and key, creating it.
func (m *model) counter(fam byte, key []byte) *counter {
	k := string(fam) + string(key)
	c, ok := m.counters[k]
	if !ok {
		c = &counter{}
		m.counters[k] = c
		i, _ := slices.BinarySearch(m.counterKeys, k)
		m.counterKeys = slices.Insert(m.counterKeys, i, k)
	}
	return c
}

// zeroCounters lists the keys (family letter first) of counters that are
// present and zero, in sorted order.
func (m *model) zeroCounters() []string {
	var out []string
	for _, k := range m.counterKeys {
		if c := m.counters[k]; c.present && c.v == 0 {
			out = append(out, k)
		}
	}
	return out
}

// removeDoc drops d from a's live emails, keeping the order of the others
// (swap-remove would also be deterministic; order keeps picks stable for
// readers of the model).
func (a *account) removeDoc(d *doc) {
	if i := slices.Index(a.docs, d); i >= 0 {
		a.docs = slices.Delete(a.docs, i, i+1)
	}
}

// longestChangelog returns the account/collection with the most entries
// above keep, scanning accounts from start so that purges spread.
func (m *model) longestChangelog(keep int, start int) (clKey, bool) {
	var best clKey
	bestN := keep
	for i := range m.accounts {
		a := m.accounts[(start+i)%len(m.accounts)]
		for _, c := range []uint8{collEmail, collThread, collCalendar, collVanishedEmail} {
			k := clKey{a.id, c}
			if n := len(m.changes[k]); n > bestN {
				best, bestN = k, n
			}
		}
	}
	return best, bestN > keep
}
