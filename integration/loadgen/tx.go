package loadgen

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/stalwart"
)

// builder fills the generator's WriteBatch with one transaction and keeps
// the model in step. Everything random comes from rng, seeded with the
// Config seed and the transaction number.
type builder struct {
	g   *Generator
	rng *rand.Rand
	tx  Tx
	// extra counts records written in batches of their own (a blob's
	// temporary link and commit key); after runs after the transaction's
	// batch (a blob purge's file removal and key deletes); err is the
	// first failure of either.
	extra int
	after []func()
	err   error
	// now is the generator's clock at the transaction's start.
	now time.Time
}

// kind shares, in percent; the rest is churn.
const (
	shareDelivery = 55
	shareFlags    = 20
	shareExpunge  = 12
	sharePurge    = 4
	shareCleanup  = 3
)

func (b *builder) build() {
	r := b.rng.IntN(100)
	switch {
	case r < shareDelivery:
		b.delivery()
	case r < shareDelivery+shareFlags:
		if !b.flagChange() {
			b.delivery()
		}
	case r < shareDelivery+shareFlags+shareExpunge:
		if !b.expunge() {
			b.delivery()
		}
	case r < shareDelivery+shareFlags+shareExpunge+sharePurge:
		if !b.changelogPurge() {
			b.delivery()
		}
	case r < shareDelivery+shareFlags+shareExpunge+sharePurge+shareCleanup:
		if !b.counterCleanup() {
			b.churn()
		}
	default:
		b.churn()
	}
	b.purgeDue()
}

// purgeDue is the scheduled blob purge, with Config.BlobPurgeDelay set:
// every orphan dead for at least the delay is purged (Stalwart's purge
// runs on a schedule, so a dead blob keeps its file and commit key for a
// while). It draws nothing from rng, so the transactions' content stays
// a function of the seed; which blobs are gone when depends on the clock.
func (b *builder) purgeDue() {
	d := b.g.cfg.BlobPurgeDelay
	if d <= 0 {
		return
	}
	m := b.g.m
	for len(m.orphans) > 0 && b.now.Sub(m.died[0]) >= d {
		b.purgeBlob(m.orphans[0])
		m.orphans, m.died = m.orphans[1:], m.died[1:]
	}
}

// pickAccount favours low account ids: a few busy mailboxes, many quiet.
func (b *builder) pickAccount() *account {
	n := len(b.g.m.accounts)
	u := b.rng.Float64()
	if b.rng.IntN(2) == 0 {
		u *= u
	}
	return b.g.m.accounts[min(int(u*float64(n)), n-1)]
}

// merge writes a counter merge and follows it in the model.
func (b *builder) merge(fam byte, key []byte, delta int64) {
	b.g.wb.MergeCF(b.g.counterFamily(fam), key, stalwart.EncodeCounter(delta))
	c := b.g.m.counter(fam, key)
	c.v += delta
	c.present = true
}

// logChanges bumps a's change id (plain Put in n, as Stalwart) and writes
// one l entry per collection with changes, all with that id.
func (b *builder) logChanges(a *account, sets map[uint8]*changeSet, vanished []uint64) {
	a.changeID++
	id := a.changeID
	b.g.wb.PutCF(b.g.h.n, accountKey(a.id), stalwart.EncodeCounter(int64(id)))
	for _, c := range []uint8{collEmail, collThread, collCalendar} {
		if cs := sets[c]; cs != nil && !cs.empty() {
			b.putChange(a.id, c, id, cs.encode())
		}
	}
	if len(vanished) > 0 {
		b.putChange(a.id, collVanishedEmail, id, encodeVanished(vanished))
	}
	if b.tx.Account == 0 {
		b.tx.Account, b.tx.ChangeID = a.id, id
	}
}

func (b *builder) putChange(acct uint32, coll uint8, id uint64, v []byte) {
	b.g.wb.PutCF(b.g.h.l, changelogKey(acct, coll, id), v)
	k := clKey{acct, coll}
	b.g.m.changes[k] = append(b.g.m.changes[k], id)
}

// delivery stores one message for one to three accounts: the blob once in
// t, and per recipient the link, properties, indexes, tags, counters and
// changelog, as Stalwart's ingest does.
func (b *builder) delivery() {
	b.tx.Kind = KindDelivery
	g, m := b.g, b.g.m
	first := b.pickAccount()
	rcpts := []*account{first}
	if b.rng.IntN(10) == 0 {
		for extra := 1 + b.rng.IntN(2); extra > 0; extra-- {
			a := b.pickAccount()
			if !containsAccount(rcpts, a) {
				rcpts = append(rcpts, a)
			}
		}
	}
	size := 1024 + b.rng.IntN(g.cfg.SmallBlobMax-1024+1)
	if b.rng.Float64() < g.cfg.LargeBlobShare {
		size = stalwart.BlobMinSize + 1 + b.rng.IntN(g.cfg.LargeBlobMax-stalwart.BlobMinSize)
	}
	payload := b.message(size)
	hash := blobfs.Sum(payload)
	b.storeBlob(hash, payload, first.id)
	size = len(payload)

	for _, a := range rcpts {
		d := &doc{id: a.nextID[collEmail], mailbox: 0, size: size, hash: hash}
		a.nextID[collEmail]++
		b.merge('n', collectionKey(a.id, collEmail), 1)
		sets := map[uint8]*changeSet{collEmail: {}, collThread: {}}
		if len(a.docs) > 0 && b.rng.IntN(10) < 4 {
			d.thread = a.docs[b.rng.IntN(len(a.docs))].thread
			sets[collThread].itemUpdates = []uint64{uint64(d.thread)}
		} else {
			d.thread = a.nextID[collThread]
			a.nextID[collThread]++
			b.merge('n', collectionKey(a.id, collThread), 1)
			sets[collThread].itemInserts = []uint64{uint64(d.thread)}
		}
		if b.rng.IntN(5) == 0 {
			d.mailbox = 1 + uint32(b.rng.IntN(4))
		}
		a.docs = append(a.docs, d)
		a.threads[d.thread]++
		m.blobRefs[hash]++

		g.wb.PutCF(g.h.k, linkKey(hash, a.id, d.id), nil)
		t := docTerms(g.cfg.Seed, a.id, d.id)
		g.wb.PutCF(g.h.p, propertyKey(a.id, collEmail, d.id, propMetadata), t.metadata(d, b.rng))
		g.wb.PutCF(g.h.p, propertyKey(a.id, collEmail, d.id, propKeywords), []byte{d.keywords})
		g.wb.PutCF(g.h.p, propertyKey(a.id, collEmail, d.id, propThread), threadValue(d))
		for _, k := range t.indexKeys(a.id, d) {
			g.wb.PutCF(g.h.i, k, nil)
		}
		g.wb.PutCF(g.h.b, indexKey(a.id, collEmail, tagMailbox, u32(nil, d.mailbox), d.id), nil)
		b.merge('n', collectionKey(a.id, quotaMarker), int64(size))
		a.quota += int64(size)
		if b.rng.IntN(10) < 4 {
			b.merge('y', rateKey(a.id), 1)
		}
		if b.rng.IntN(2) == 0 {
			b.addTask(a.id, d.id)
		}
		sets[collEmail].containerProps = []uint64{uint64(d.mailbox)}
		sets[collEmail].itemInserts = []uint64{itemID(d.thread, d.id)}
		if b.rng.IntN(20) == 0 {
			ev := a.nextID[collCalendar]
			a.nextID[collCalendar]++
			a.events = append(a.events, ev)
			b.merge('n', collectionKey(a.id, collCalendar), 1)
			g.wb.PutCF(g.h.p, propertyKey(a.id, collCalendar, ev, propEvent), calendarEvent(b.rng, ev))
			sets[collCalendar] = &changeSet{containerProps: []uint64{0}, itemInserts: []uint64{uint64(ev)}}
		}
		b.logChanges(a, sets, nil)
	}
	if b.rng.IntN(10) == 0 {
		b.enqueue(int64(size)) // a copy for a remote recipient
	}
}

// flagChange sets or clears a keyword on one to three messages of one
// account (IMAP STORE / JMAP Email/set keywords).
func (b *builder) flagChange() bool {
	a := b.pickAccount()
	if len(a.docs) == 0 {
		return false
	}
	b.tx.Kind = KindFlagChange
	g := b.g
	cs := &changeSet{}
	for n := 1 + b.rng.IntN(3); n > 0; n-- {
		d := a.docs[b.rng.IntN(len(a.docs))]
		kw := uint8(b.rng.IntN(6))
		tag := indexKey(a.id, collEmail, tagKeyword, []byte{kw}, d.id)
		d.keywords ^= 1 << kw
		if d.keywords&(1<<kw) != 0 {
			g.wb.PutCF(g.h.b, tag, nil)
		} else {
			g.wb.DeleteCF(g.h.b, tag)
		}
		g.wb.PutCF(g.h.p, propertyKey(a.id, collEmail, d.id, propKeywords), []byte{d.keywords})
		cs.itemUpdates = addUnique(cs.itemUpdates, itemID(d.thread, d.id))
		if kw == 0 { // \Seen changes the mailbox's unread count
			cs.containerProps = addUnique(cs.containerProps, uint64(d.mailbox))
		}
	}
	b.logChanges(a, map[uint8]*changeSet{collEmail: cs}, nil)
	return true
}

// expunge deletes one to three messages of one account with every key they
// own, and sometimes purges their blobs (plus older orphaned blobs).
func (b *builder) expunge() bool {
	a := b.pickAccount()
	if len(a.docs) == 0 {
		return false
	}
	b.tx.Kind = KindExpunge
	g, m := b.g, b.g.m
	email, thread := &changeSet{}, &changeSet{}
	var vanished []uint64
	blobPurge := b.rng.IntN(2) == 0
	for n := 1 + b.rng.IntN(3); n > 0 && len(a.docs) > 0; n-- {
		d := a.docs[b.rng.IntN(len(a.docs))]
		a.removeDoc(d)
		for _, f := range []uint8{propMetadata, propKeywords, propThread} {
			g.wb.DeleteCF(g.h.p, propertyKey(a.id, collEmail, d.id, f))
		}
		t := docTerms(g.cfg.Seed, a.id, d.id)
		for _, k := range t.indexKeys(a.id, d) {
			g.wb.DeleteCF(g.h.i, k)
		}
		g.wb.DeleteCF(g.h.b, indexKey(a.id, collEmail, tagMailbox, u32(nil, d.mailbox), d.id))
		for kw := uint8(0); kw < 8; kw++ {
			if d.keywords&(1<<kw) != 0 {
				g.wb.DeleteCF(g.h.b, indexKey(a.id, collEmail, tagKeyword, []byte{kw}, d.id))
			}
		}
		g.wb.DeleteCF(g.h.k, linkKey(d.hash, a.id, d.id))
		b.recordDeleted(a.id, d)
		if m.blobRefs[d.hash]--; m.blobRefs[d.hash] == 0 {
			delete(m.blobRefs, d.hash)
			m.orphans = append(m.orphans, d.hash)
			m.died = append(m.died, b.now)
		}
		b.merge('n', collectionKey(a.id, quotaMarker), -int64(d.size))
		a.quota -= int64(d.size)
		id := itemID(d.thread, d.id)
		email.itemDeletes = append(email.itemDeletes, id)
		email.containerProps = addUnique(email.containerProps, uint64(d.mailbox))
		vanished = append(vanished, id)
		if a.threads[d.thread]--; a.threads[d.thread] == 0 {
			delete(a.threads, d.thread)
			thread.itemUpdates = removeID(thread.itemUpdates, uint64(d.thread))
			thread.itemDeletes = addUnique(thread.itemDeletes, uint64(d.thread))
		} else if !containsID(thread.itemDeletes, uint64(d.thread)) {
			thread.itemUpdates = addUnique(thread.itemUpdates, uint64(d.thread))
		}
	}
	if blobPurge && g.cfg.BlobPurgeDelay == 0 {
		for n := 0; n < 3 && len(m.orphans) > 0; n++ {
			b.purgeBlob(m.orphans[0])
			m.orphans, m.died = m.orphans[1:], m.died[1:]
		}
	}
	sets := map[uint8]*changeSet{collEmail: email, collThread: thread}
	if len(a.events) > 0 && b.rng.IntN(5) == 0 {
		ev := a.events[0]
		a.events = a.events[1:]
		g.wb.DeleteCF(g.h.p, propertyKey(a.id, collCalendar, ev, propEvent))
		sets[collCalendar] = &changeSet{containerProps: []uint64{0}, itemDeletes: []uint64{uint64(ev)}}
	}
	if b.rng.IntN(10) < 3 {
		b.logChanges(a, sets, vanished)
	} else {
		b.logChanges(a, sets, nil)
	}
	return true
}

// changelogPurge trims the longest changelog above ChangesHistory as
// Stalwart's purge does: DeleteRange over the old ids, then an empty value
// at the first kept key.
func (b *builder) changelogPurge() bool {
	m := b.g.m
	k, ok := m.longestChangelog(b.g.cfg.ChangesHistory, b.rng.IntN(len(m.accounts)))
	if !ok {
		return false
	}
	b.tx.Kind = KindChangelogPurge
	ids := m.changes[k]
	cut := len(ids) - b.g.cfg.ChangesHistory
	keepFrom := ids[cut]
	b.g.wb.DeleteRangeCF(b.g.h.l, changelogKey(k.acct, k.coll, 0), changelogKey(k.acct, k.coll, keepFrom))
	b.g.wb.PutCF(b.g.h.l, changelogKey(k.acct, k.coll, keepFrom), []byte{})
	m.purged = append(m.purged, purge{key: k, keepFrom: keepFrom, removed: append([]uint64(nil), ids[:cut]...)})
	m.changes[k] = append([]uint64(nil), ids[cut:]...)
	return true
}

// counterCleanup deletes counters that went back to zero (Stalwart's
// housekeeping of n, u and y), up to eight per transaction.
func (b *builder) counterCleanup() bool {
	zeros := b.g.m.zeroCounters()
	if len(zeros) == 0 {
		return false
	}
	b.tx.Kind = KindCounterCleanup
	start := b.rng.IntN(len(zeros))
	for i := 0; i < len(zeros) && i < 8; i++ {
		k := zeros[(start+i)%len(zeros)]
		b.g.wb.DeleteCF(b.g.counterFamily(k[0]), []byte(k[1:]))
		b.g.m.counters[k].present = false
	}
	return true
}

// churn is the high-turnover traffic that touches no account's data:
// in-memory values (m), the outbound queue (q, with its quota in u),
// indexing tasks (f), deleted-item records (j) and rate counter resets (y).
func (b *builder) churn() {
	b.tx.Kind = KindChurn
	g, m := b.g, b.g.m
	for n := 1 + b.rng.IntN(3); n > 0; n-- {
		if len(m.mem) > 0 && b.rng.IntN(5) == 0 {
			v := &m.mem[b.rng.IntN(len(m.mem))]
			v.putOnce = false
			g.wb.PutCF(g.h.m, v.key, b.randomBytes(32+b.rng.IntN(160)))
			continue
		}
		m.memSeq++
		key := append([]byte{'s'}, b.randomBytes(16)...)
		key = binary.BigEndian.AppendUint64(key, m.memSeq) // unique: Put once
		g.wb.PutCF(g.h.m, key, b.randomBytes(32+b.rng.IntN(160)))
		m.mem = append(m.mem, memValue{key: key, putOnce: true})
	}
	for len(m.mem) > 48 || (len(m.mem) > 0 && b.rng.IntN(3) == 0) {
		v := m.mem[0]
		m.mem = m.mem[1:]
		if v.putOnce && b.rng.IntN(2) == 0 {
			g.wb.SingleDeleteCF(g.h.m, v.key)
		} else {
			g.wb.DeleteCF(g.h.m, v.key)
		}
	}
	if b.rng.IntN(10) < 6 {
		b.enqueue(int64(1024 + b.rng.IntN(32<<10)))
	}
	if len(m.queue) > 0 && b.rng.IntN(10) < 6 {
		b.dequeue()
	}
	for n := b.rng.IntN(3); n > 0 && len(m.tasks) > 0; n-- {
		b.completeTask()
	}
	for len(m.deleted) > 32 {
		g.wb.DeleteCF(g.h.j, m.deleted[0])
		m.deleted = m.deleted[1:]
	}
	if b.rng.IntN(2) == 0 {
		a := b.pickAccount()
		if c := m.counter('y', rateKey(a.id)); c.v != 0 {
			b.merge('y', rateKey(a.id), -c.v) // the rate window ends
		}
	}
}

// enqueue puts a message in the outbound queue with its quota in u.
func (b *builder) enqueue(size int64) {
	g, m := b.g, b.g.m
	m.queueSeq++
	key := binary.BigEndian.AppendUint64(nil, 1_700_000_000+uint64(b.tx.N)) // due time
	key = binary.BigEndian.AppendUint64(key, m.queueSeq)
	uKey := append([]byte("queue-quota:"), byte('a'+b.rng.IntN(4)))
	val := fmt.Appendf(nil, "queue=%c size=%d rcpt=user%d@remote.example attempts=0 ", uKey[len(uKey)-1], size, b.rng.IntN(1000))
	g.wb.PutCF(g.h.q, key, append(val, b.randomBytes(64+b.rng.IntN(192))...))
	b.merge('u', uKey, size)
	m.queue = append(m.queue, queued{key: key, uKey: uKey, size: size})
	for len(m.queue) > maxQueued {
		b.dequeue()
	}
}

// Bounds on the queue and task backlogs: Stalwart works through them, so
// q and f see puts and deletes at the same pace instead of only growing.
const (
	maxQueued = 64
	maxTasks  = 64
)

// dequeue delivers the oldest queued message and releases its quota.
func (b *builder) dequeue() {
	m := b.g.m
	q := m.queue[0]
	m.queue = m.queue[1:]
	b.g.wb.DeleteCF(b.g.h.q, q.key)
	b.merge('u', q.uKey, -q.size)
}

// completeTask deletes the oldest task.
func (b *builder) completeTask() {
	m := b.g.m
	b.g.wb.DeleteCF(b.g.h.f, m.tasks[0])
	m.tasks = m.tasks[1:]
}

func (b *builder) addTask(acct, docID uint32) {
	key := binary.BigEndian.AppendUint64(nil, 1_700_000_000+uint64(b.tx.N))
	key = append(u32(u32(key, acct), docID), 1) // task type 1: index
	b.g.wb.PutCF(b.g.h.f, key, []byte{0})
	b.g.m.tasks = append(b.g.m.tasks, key)
	for len(b.g.m.tasks) > maxTasks {
		b.completeTask()
	}
}

func (b *builder) recordDeleted(acct uint32, d *doc) {
	key := append(u32(u32(nil, acct), d.id), collEmail)
	val := binary.BigEndian.AppendUint64(append([]byte(nil), d.hash[:]...), uint64(d.size))
	b.g.wb.PutCF(b.g.h.j, key, val)
	b.g.m.deleted = append(b.g.m.deleted, key)
}

// counterFamily maps a counter family letter (n, u, y) to its handle.
func (g *Generator) counterFamily(fam byte) *grocksdb.ColumnFamilyHandle {
	switch fam {
	case 'n':
		return g.h.n
	case 'u':
		return g.h.u
	case 'y':
		return g.h.y
	}
	panic(fmt.Sprintf("loadgen: %q is not a counter family", fam))
}

func rateKey(acct uint32) []byte { return u32([]byte("rcpt-rate:"), acct) }

func threadValue(d *doc) []byte { return u32(u32(nil, d.thread), d.mailbox) }

func (b *builder) randomBytes(n int) []byte {
	out := make([]byte, n+7)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(out[i:], b.rng.Uint64())
	}
	return out[:n]
}

// message returns an RFC 5322-looking message of exactly size bytes: a
// header unique to this transaction, then a base64 "attachment".
func (b *builder) message(size int) []byte {
	hdr := fmt.Appendf(nil, "Message-ID: <%d.%d@loadgen.example>\r\nFrom: %s\r\nSubject: %s\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
		b.g.cfg.Seed, b.tx.N, fmt.Sprintf("user%d@sender%d.example", b.rng.IntN(500), b.rng.IntN(50)),
		strings.Join(words(b.rng, 3), " "))
	out := make([]byte, size)
	n := copy(out, hdr)
	if n < size {
		raw := b.randomBytes(base64.StdEncoding.DecodedLen(size-n) + 3)
		enc := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
		base64.StdEncoding.Encode(enc, raw)
		copy(out[n:], enc)
	}
	return out
}

func calendarEvent(rng *rand.Rand, ev uint32) []byte {
	return fmt.Appendf(nil, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:%d@loadgen.example\r\nSUMMARY:%s\r\n"+
		"DTSTART:2026%02d%02dT%02d0000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		ev, strings.Join(words(rng, 4), " "), 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24))
}

// terms is what a message is indexed by. It is derived from the seed,
// account and document id alone, so an expunge recomputes the index keys
// to delete instead of the model keeping them.
type terms struct {
	from       string
	subject    []string
	receivedAt uint64
}

func docTerms(seed int64, acct, docID uint32) terms {
	rng := rand.New(rand.NewPCG(uint64(seed)^0x9e3779b97f4a7c15, uint64(acct)<<32|uint64(docID)))
	return terms{
		from:       fmt.Sprintf("user%d@sender%d.example", rng.IntN(500), rng.IntN(50)),
		subject:    words(rng, 2+rng.IntN(4)),
		receivedAt: 1_700_000_000 + uint64(docID)*60 + uint64(rng.IntN(60)),
	}
}

func (t terms) indexKeys(acct uint32, d *doc) [][]byte {
	keys := [][]byte{
		indexKey(acct, collEmail, idxFrom, []byte(t.from), d.id),
		indexKey(acct, collEmail, idxReceivedAt, u64(nil, t.receivedAt), d.id),
		indexKey(acct, collEmail, idxSize, u32(nil, uint32(d.size)), d.id),
	}
	seen := map[string]bool{}
	for _, w := range t.subject {
		if !seen[w] {
			seen[w] = true
			keys = append(keys, indexKey(acct, collEmail, idxSubject, []byte(w), d.id))
		}
	}
	return keys
}

func (t terms) metadata(d *doc, rng *rand.Rand) []byte {
	return fmt.Appendf(nil, "from=%s\x00subject=%s\x00received=%d\x00size=%d\x00blob=%x\x00preview=%s",
		t.from, strings.Join(t.subject, " "), t.receivedAt, d.size, d.hash[:8], strings.Join(words(rng, 8+rng.IntN(24)), " "))
}

var vocabulary = strings.Fields(`invoice meeting report quarterly budget review project update
	schedule lunch travel conference agenda minutes proposal contract release notes security
	alert password reset newsletter offer order shipped delivery receipt payment reminder
	team weekly sync design draft feedback question answer support ticket urgent holiday
	photos family weekend plans dinner party birthday welcome account verify login backup
	server storage mail calendar invitation accepted declined tentative`)

func words(rng *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = vocabulary[rng.IntN(len(vocabulary))]
	}
	return out
}

func containsAccount(l []*account, a *account) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

func containsID(l []uint64, v uint64) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

func removeID(l []uint64, v uint64) []uint64 {
	out := l[:0]
	for _, x := range l {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
