package loadgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/segment"
)

func openGen(t *testing.T, cfg Config) *Generator {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "primary")
	}
	g, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func run(t *testing.T, g *Generator, n int) {
	t.Helper()
	if got, err := g.Run(context.Background(), n, 0); err != nil || got != n {
		t.Fatalf("Run(%d) = %d, %v", n, got, err)
	}
}

func mark(t *testing.T, g *Generator) Mark {
	t.Helper()
	m, err := g.Mark(context.Background())
	if err != nil {
		t.Fatalf("Mark: %v", err)
	}
	return m
}

// get reads key from family fam through the store, so merges are resolved.
func get(t *testing.T, g *Generator, fam string, key []byte) ([]byte, bool) {
	t.Helper()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	v, err := g.Store().DB.GetCF(ro, g.Store().Handle(fam), key)
	if err != nil {
		t.Fatalf("Get %s/%x: %v", fam, key, err)
	}
	defer v.Free()
	if !v.Exists() {
		return nil, false
	}
	return bytes.Clone(v.Data()), true
}

func counterValue(t *testing.T, b []byte) int64 {
	t.Helper()
	if len(b) != 8 {
		t.Fatalf("counter value %x is not 8 bytes", b)
	}
	return int64(binary.LittleEndian.Uint64(b))
}

// scan returns every key and value of a family.
func scan(t *testing.T, g *Generator, fam string) (keys, vals [][]byte) {
	t.Helper()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	it := g.Store().DB.NewIteratorCF(ro, g.Store().Handle(fam))
	defer it.Close()
	for it.SeekToFirst(); it.Valid(); it.Next() {
		keys = append(keys, bytes.Clone(it.Key().Data()))
		vals = append(vals, bytes.Clone(it.Value().Data()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return keys, vals
}

func TestOpenRefusesWrongDirectories(t *testing.T) {
	existing := filepath.Join(t.TempDir(), "store")
	g, err := Open(Config{Dir: existing, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	run(t, g, 10)
	g.Close()

	tests := []struct {
		name    string
		setup   func(dir string) string
		cfg     Config
		wantErr string
	}{
		{"missing dir is created", func(d string) string { return filepath.Join(d, "new", "db") }, Config{}, ""},
		{"empty dir", func(d string) string { return d }, Config{}, ""},
		{"non-empty non-RocksDB dir", func(d string) string {
			os.WriteFile(filepath.Join(d, "mail.eml"), []byte("x"), 0o644)
			return d
		}, Config{}, "not a RocksDB store"},
		{"existing store without Reset", func(string) string { return existing }, Config{}, "already holds a RocksDB store"},
		{"existing store with Reset", func(string) string { return existing }, Config{Reset: true}, ""},
		{"no dir", func(string) string { return "" }, Config{}, "Dir is empty"},
		{"negative accounts", func(d string) string { return d }, Config{Accounts: -1}, "Accounts"},
		{"small blob not small", func(d string) string { return d }, Config{SmallBlobMax: stalwart.BlobMinSize}, "SmallBlobMax"},
		{"large blob not large", func(d string) string { return d }, Config{LargeBlobMax: 1000}, "LargeBlobMax"},
		{"tiny write buffer", func(d string) string { return d }, Config{WriteBufferSize: 1024}, "WriteBufferSize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Dir = tc.setup(t.TempDir())
			g, err := Open(cfg)
			if tc.wantErr != "" {
				if err == nil {
					g.Close()
					t.Fatalf("Open succeeded, want error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open error %q, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer g.Close()
			// A fresh store: only the schema version is there.
			if v, ok := get(t, g, "p", []byte{0}); !ok || binary.BigEndian.Uint32(v) != schemaVersion016 {
				t.Fatalf("schema version = %x, %v", v, ok)
			}
			if seq := g.Store().DB.GetLatestSequenceNumber(); seq != 1 {
				t.Fatalf("fresh store at seq %d, want 1", seq)
			}
		})
	}
}

func TestSameSeedSameStore(t *testing.T) {
	if testing.Short() {
		t.Skip("writes two 800-transaction stores: skipped under -short")
	}
	const n = 800
	var marks []Mark
	var txs [][]Tx
	for _, cfg := range []Config{
		{Seed: 7, WriteBufferSize: 256 << 10},
		{Seed: 7, WriteBufferSize: 256 << 10},
		// Flush timing must not matter: content depends on seed and tx only.
		{Seed: 7, WriteBufferSize: 4 << 20, MaxTotalWALSize: -1},
		{Seed: 8, WriteBufferSize: 256 << 10},
	} {
		var log []Tx
		cfg.AfterTx = func(tx Tx) error { log = append(log, tx); return nil }
		g := openGen(t, cfg)
		run(t, g, n)
		marks = append(marks, mark(t, g))
		txs = append(txs, log)
	}
	for i := 1; i < 3; i++ {
		if marks[i].Seq != marks[0].Seq || marks[i].Tx != n {
			t.Errorf("generator %d: seq %d tx %d, want seq %d tx %d", i, marks[i].Seq, marks[i].Tx, marks[0].Seq, n)
		}
		if err := CompareMark(marks[0], marks[i].Families); err != nil {
			t.Errorf("generator %d with the same seed differs: %v", i, err)
		}
		if !reflect.DeepEqual(txs[i], txs[0]) {
			t.Errorf("generator %d wrote a different transaction sequence", i)
		}
	}
	if err := CompareMark(marks[0], marks[3].Families); err == nil {
		t.Error("a different seed wrote the same store")
	}
}

// shaped is a primary after a few thousand transactions with 256 KiB
// write buffers, shared by the tests that inspect what was written.
type shaped struct {
	g   *Generator
	txs []Tx
}

var (
	shapedOnce sync.Once
	shapedGen  *shaped
	shapedErr  error
)

func shapedStore(t *testing.T) *shaped {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a store with flushes, compactions and blob files: skipped under -short")
	}
	shapedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loadgen-shape-")
		if err != nil {
			shapedErr = err
			return
		}
		s := &shaped{}
		g, err := Open(Config{
			Dir: filepath.Join(dir, "primary"), Seed: 42, WriteBufferSize: 256 << 10,
			AfterTx: func(tx Tx) error { s.txs = append(s.txs, tx); return nil },
		})
		if err != nil {
			shapedErr = err
			return
		}
		s.g = g
		if _, err := g.Run(context.Background(), 3000, 0); err != nil {
			shapedErr = err
			return
		}
		shapedGen = s
	})
	if shapedErr != nil {
		t.Fatalf("shaped store: %v", shapedErr)
	}
	return shapedGen
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shapedGen != nil {
		dir := filepath.Dir(shapedGen.g.Dir())
		shapedGen.g.Close()
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func TestStoreFiles(t *testing.T) {
	s := shapedStore(t)
	count := func(pattern string) int {
		m, err := filepath.Glob(filepath.Join(s.g.Dir(), pattern))
		if err != nil {
			t.Fatal(err)
		}
		return len(m)
	}
	for _, tc := range []struct {
		pattern string
		min     int
	}{
		{"*.blob", 1},
		{"*.sst", 3},
		{"*.log", 1},
		{"OPTIONS-*", 1},
	} {
		if n := count(tc.pattern); n < tc.min {
			t.Errorf("%d files %s in the primary, want at least %d", n, tc.pattern, tc.min)
		}
	}
	// WAL files were deleted along the way: file numbers are shared by
	// SST, blob and WAL files, so the oldest live WAL is far from 1.
	logs, _ := walFiles(s.g.Dir())
	if len(logs) == 0 || filepath.Base(logs[0]) <= "000010.log" {
		t.Errorf("WAL files %v: expected old WALs to have been deleted", logs)
	}
}

func TestEveryKindWritten(t *testing.T) {
	s := shapedStore(t)
	counts := s.g.Counts()
	total := 0
	for _, k := range Kinds() {
		if counts[k] == 0 {
			t.Errorf("no %s transaction in %d: %v", k, len(s.txs), counts)
		}
		total += counts[k]
	}
	if total != len(s.txs) || s.g.TxCount() != len(s.txs) {
		t.Errorf("counts %v sum to %d, TxCount %d, %d transactions seen", counts, total, s.g.TxCount(), len(s.txs))
	}
	if d := counts[KindDelivery]; d < len(s.txs)/2 || d > len(s.txs)*3/4 {
		t.Errorf("%d deliveries of %d transactions: mix is off", d, len(s.txs))
	}
}

func TestTxSequenceNumbers(t *testing.T) {
	s := shapedStore(t)
	prev := uint64(1) // the schema version write
	for i, tx := range s.txs {
		if tx.N != i {
			t.Fatalf("tx %d has N %d", i, tx.N)
		}
		if tx.FirstSeq != prev+1 || tx.LastSeq-tx.FirstSeq+1 != uint64(tx.Records) {
			t.Fatalf("tx %d (%s): seq %d..%d for %d records after %d", i, tx.Kind, tx.FirstSeq, tx.LastSeq, tx.Records, prev)
		}
		switch tx.Kind {
		case KindDelivery, KindFlagChange, KindExpunge:
			if tx.Account == 0 || tx.ChangeID == 0 {
				t.Fatalf("tx %d (%s) names no account/change id: %+v", i, tx.Kind, tx)
			}
		default:
			if tx.Account != 0 || tx.ChangeID != 0 {
				t.Fatalf("tx %d (%s) touches no account but says %+v", i, tx.Kind, tx)
			}
		}
		prev = tx.LastSeq
	}
}

func TestCountersResolveMerges(t *testing.T) {
	s := shapedStore(t)
	g, m := s.g, s.g.m
	for _, a := range m.accounts {
		v, ok := get(t, g, "n", accountKey(a.id))
		if a.changeID == 0 {
			if ok {
				t.Errorf("account %d: change id %x but no change", a.id, v)
			}
			continue
		}
		if !ok || counterValue(t, v) != int64(a.changeID) {
			t.Errorf("account %d: change id %x, want %d", a.id, v, a.changeID)
		}
		for _, c := range []uint8{collEmail, collThread, collCalendar} {
			v, ok := get(t, g, "n", collectionKey(a.id, c))
			if want := a.nextID[c]; want != 0 && (!ok || counterValue(t, v) != int64(want)) {
				t.Errorf("account %d collection %d: document id counter %x, want %d", a.id, c, v, want)
			}
		}
		var live int64
		for _, d := range a.docs {
			live += int64(d.size)
		}
		if live != a.quota {
			t.Fatalf("model: account %d quota %d, live blobs %d", a.id, a.quota, live)
		}
		v, ok = get(t, g, "n", collectionKey(a.id, quotaMarker))
		switch {
		case ok && counterValue(t, v) != live:
			t.Errorf("account %d: quota %d, want %d", a.id, counterValue(t, v), live)
		case !ok && live != 0:
			t.Errorf("account %d: quota missing, want %d", a.id, live)
		}
	}
	checkCounters(t, g)
}

// checkCounters compares every zero-able counter with the model and
// returns how many are currently deleted.
func checkCounters(t *testing.T, g *Generator) (cleaned int) {
	t.Helper()
	for k, c := range g.m.counters {
		v, ok := get(t, g, k[:1], []byte(k[1:]))
		switch {
		case !c.present:
			cleaned++
			if ok {
				t.Errorf("counter %s/%q was cleaned up but reads %x", k[:1], k[1:], v)
			}
		case !ok || counterValue(t, v) != c.v:
			t.Errorf("counter %s/%q = %x, want %d", k[:1], k[1:], v, c.v)
		}
	}
	return cleaned
}

func TestCounterCleanupDeletesZeroCounters(t *testing.T) {
	g := openGen(t, Config{Seed: 11})
	for i := 0; ; i++ {
		if i == 2000 {
			t.Fatal("no counter cleanup in 2000 transactions")
		}
		tx, err := g.Tx(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if tx.Kind == KindCounterCleanup {
			break
		}
	}
	if checkCounters(t, g) == 0 {
		t.Fatal("a counter cleanup ran but no counter is deleted")
	}
}

func TestChangelog(t *testing.T) {
	s := shapedStore(t)
	g, m := s.g, s.g.m
	if len(m.purged) == 0 {
		t.Fatal("no changelog purge")
	}
	keys, vals := scan(t, g, "l")
	want := 0
	for _, ids := range m.changes {
		want += len(ids)
	}
	if len(keys) != want {
		t.Errorf("l holds %d keys, the model %d", len(keys), want)
	}
	markers := 0
	for i, k := range keys {
		if len(k) != 13 {
			t.Fatalf("l key %x is not 13 bytes", k)
		}
		ck := clKey{binary.BigEndian.Uint32(k), k[4]}
		id := binary.BigEndian.Uint64(k[5:])
		ids := m.changes[ck]
		if len(ids) == 0 || id < ids[0] || id > g.m.account(ck.acct).changeID {
			t.Errorf("l key %x outside the model's changelog %v", k, ids)
		}
		if len(vals[i]) == 0 {
			markers++
			if id != ids[0] {
				t.Errorf("truncation marker %x is not the first kept entry %d", k, ids[0])
			}
			continue
		}
		if err := checkChangeValue(ck.coll, vals[i]); err != nil {
			t.Errorf("l %x: %v", k, err)
		}
	}
	if markers == 0 {
		t.Error("no empty-valued truncation marker in l")
	}
	for _, p := range m.purged {
		for _, id := range p.removed {
			if v, ok := get(t, g, "l", changelogKey(p.key.acct, p.key.coll, id)); ok {
				t.Fatalf("range-deleted l entry %d/%d/%d still reads %x", p.key.acct, p.key.coll, id, v)
			}
		}
	}
	for k, ids := range m.changes {
		if len(ids) > g.cfg.ChangesHistory+200 {
			t.Errorf("changelog %v has %d entries: purges do not keep up", k, len(ids))
		}
	}
}

// checkChangeValue decodes an l value as Stalwart would: seven counts then
// exactly that many ids for sync collections, concatenated ids for
// vanished ones.
func checkChangeValue(coll uint8, v []byte) error {
	next := func() (uint64, bool) {
		x, n := binary.Uvarint(v)
		if n <= 0 {
			return 0, false
		}
		v = v[n:]
		return x, true
	}
	if coll == collVanishedEmail {
		for len(v) > 0 {
			if _, ok := next(); !ok {
				return errors.New("bad vanished item")
			}
		}
		return nil
	}
	var total uint64
	for i := 0; i < 7; i++ {
		c, ok := next()
		if !ok {
			return errors.New("truncated counts")
		}
		total += c
	}
	if total == 0 {
		return errors.New("empty change set")
	}
	for ; total > 0; total-- {
		if _, ok := next(); !ok {
			return errors.New("fewer ids than counted")
		}
	}
	if len(v) != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

func TestBlobsAndLinks(t *testing.T) {
	s := shapedStore(t)
	g, m := s.g, s.g.m
	keys, vals := scan(t, g, "t")
	large := 0
	for i, k := range keys {
		v := vals[i]
		if len(k) != 32 || len(v) == 0 || v[len(v)-1] != 0x00 {
			t.Fatalf("t %x: bad key or missing raw marker", k)
		}
		if h := blobfs.Sum(v[:len(v)-1]); !bytes.Equal(h[:], k) {
			t.Fatalf("t %x: key is not the hash of the payload", k)
		}
		if len(v) > stalwart.BlobMinSize {
			large++
		}
	}
	if large == 0 || large == len(keys) {
		t.Errorf("%d of %d blobs above BlobMinSize, want a mix", large, len(keys))
	}
	if want := len(m.blobRefs) + len(m.orphans); len(keys) != want {
		t.Errorf("t holds %d blobs, model %d linked + %d orphans", len(keys), len(m.blobRefs), len(m.orphans))
	}
	links, _ := scan(t, g, "k")
	live := 0
	for _, a := range m.accounts {
		live += len(a.docs)
		for _, d := range a.docs {
			if _, ok := get(t, g, "k", linkKey(d.hash, a.id, d.id)); !ok {
				t.Fatalf("account %d doc %d: no blob link", a.id, d.id)
			}
			if _, ok := get(t, g, "p", propertyKey(a.id, collEmail, d.id, propMetadata)); !ok {
				t.Fatalf("account %d doc %d: no metadata", a.id, d.id)
			}
		}
	}
	commits, docs := 0, 0
	for _, k := range links {
		l, err := bloblink.ParseKey(k)
		if err != nil {
			t.Fatalf("k %x: %v", k, err)
		}
		switch l.Kind {
		case bloblink.Commit:
			commits++
			if _, ok := get(t, g, "t", k); !ok {
				t.Fatalf("commit key %x without its blob in t", k)
			}
		case bloblink.Document:
			docs++
		default:
			t.Fatalf("k %x: a %v link in a store without a blob directory", k, l.Kind)
		}
	}
	if docs != live || commits != len(keys) {
		t.Errorf("k holds %d document links and %d commit keys; %d live messages, %d blobs in t", docs, commits, live, len(keys))
	}
	// Index and tag entries are key-only, as Stalwart writes them.
	for _, fam := range []string{"i", "b"} {
		keys, vals := scan(t, g, fam)
		if len(keys) == 0 {
			t.Errorf("family %s is empty", fam)
		}
		for i, v := range vals {
			if len(v) != 0 {
				t.Fatalf("%s %x has a value", fam, keys[i])
			}
		}
	}
}

func TestMarkTracksWrites(t *testing.T) {
	g := openGen(t, Config{Seed: 3, WriteBufferSize: 256 << 10})
	run(t, g, 200)
	before := mark(t, g)
	if before.Seq != g.Store().DB.GetLatestSequenceNumber() || before.Tx != 200 {
		t.Fatalf("mark seq %d tx %d, store at %d", before.Seq, before.Tx, g.Store().DB.GetLatestSequenceNumber())
	}
	if err := CompareMark(before, before.Families); err != nil {
		t.Fatalf("a mark differs from itself: %v", err)
	}
	// A flush moves data from WAL to SST without changing it.
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	if logs, _ := walFiles(g.Dir()); len(logs) != 1 {
		t.Errorf("after Flush %d WAL files remain, want 1", len(logs))
	}
	if err := CompareMark(before, mark(t, g).Families); err != nil {
		t.Fatalf("flush changed the digests: %v", err)
	}
	// Write until a delivery lands, which changes t among others.
	for {
		tx, err := g.Tx(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if tx.Kind == KindDelivery {
			break
		}
	}
	after := mark(t, g)
	if after.Seq <= before.Seq {
		t.Fatalf("seq did not move: %d -> %d", before.Seq, after.Seq)
	}
	err := CompareMark(before, after.Families)
	if err == nil {
		t.Fatal("CompareMark found no difference after a delivery")
	}
	for _, fam := range []string{"family t:", "family l:", "family n:"} {
		if !strings.Contains(err.Error(), fam) {
			t.Errorf("CompareMark error does not name %q: %v", fam, err)
		}
	}
	if strings.Contains(err.Error(), "family a:") {
		t.Errorf("CompareMark names an unchanged family: %v", err)
	}
}

func TestMarksRoundTrip(t *testing.T) {
	g := openGen(t, Config{Seed: 5})
	path := filepath.Join(t.TempDir(), "marks.jsonl")
	var want []Mark
	for i := 0; i < 3; i++ {
		run(t, g, 20)
		m := mark(t, g)
		if err := AppendMark(path, m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	got, err := ReadMarks(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}

	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n{not json\n")
	f.Close()
	if _, err := ReadMarks(path); err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("ReadMarks on a bad line: %v, want an error naming line 5", err)
	}
	if _, err := ReadMarks(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("ReadMarks of a missing file succeeded")
	}
}

func TestCompareFamilies(t *testing.T) {
	sum := func(name string, keys uint64, d string) segment.FamilySum {
		return segment.FamilySum{Name: name, Keys: keys, Digest: d}
	}
	tests := []struct {
		name      string
		want, got []segment.FamilySum
		diff      []string // families that differ
	}{
		{"equal", []segment.FamilySum{sum("n", 2, "aa"), sum("t", 1, "bb")}, []segment.FamilySum{sum("t", 1, "bb"), sum("n", 2, "aa")}, nil},
		{"key count", []segment.FamilySum{sum("n", 2, "aa")}, []segment.FamilySum{sum("n", 3, "cc")}, []string{"n"}},
		{"digest only", []segment.FamilySum{sum("n", 2, "aa"), sum("l", 1, "x")}, []segment.FamilySum{sum("n", 2, "ab"), sum("l", 1, "x")}, []string{"n"}},
		{"missing empty family", []segment.FamilySum{sum("n", 2, "aa"), sum("a", 0, "e")}, []segment.FamilySum{sum("n", 2, "aa")}, nil},
		{"missing family with keys", []segment.FamilySum{sum("n", 2, "aa"), sum("l", 4, "e")}, []segment.FamilySum{sum("n", 2, "aa")}, []string{"l"}},
		{"extra empty family", []segment.FamilySum{sum("n", 2, "aa")}, []segment.FamilySum{sum("n", 2, "aa"), sum("zz", 0, "e")}, nil},
		{"extra family with keys", []segment.FamilySum{sum("n", 2, "aa")}, []segment.FamilySum{sum("n", 2, "aa"), sum("zz", 1, "e")}, []string{"zz"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var diff []string
			for _, r := range CompareFamilies(tc.want, tc.got) {
				if !r.Equal {
					diff = append(diff, r.Name)
				}
			}
			if !reflect.DeepEqual(diff, tc.diff) {
				t.Fatalf("differing families %v, want %v", diff, tc.diff)
			}
			err := CompareMark(Mark{Families: tc.want}, tc.got)
			if (err != nil) != (len(tc.diff) > 0) {
				t.Fatalf("CompareMark = %v, want differences %v", err, tc.diff)
			}
			for _, f := range tc.diff {
				if !strings.Contains(err.Error(), "family "+f+":") {
					t.Errorf("CompareMark error %q does not name family %s", err, f)
				}
			}
		})
	}
}

func TestRun(t *testing.T) {
	g := openGen(t, Config{Seed: 9})
	t.Run("rate", func(t *testing.T) {
		start := time.Now()
		if n, err := g.Run(context.Background(), 21, 200); n != 21 || err != nil {
			t.Fatalf("Run = %d, %v", n, err)
		}
		if d := time.Since(start); d < 90*time.Millisecond {
			t.Errorf("21 tx at 200/s took %v, want >= 100ms", d)
		}
	})
	t.Run("until ctx done", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		n, err := g.Run(ctx, 0, 500)
		if err != nil || n == 0 || n > 60 {
			t.Fatalf("Run until done = %d, %v", n, err)
		}
	})
	t.Run("n cut short", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if n, err := g.Run(ctx, 10, 0); n != 0 || !errors.Is(err, context.Canceled) {
			t.Fatalf("Run with a cancelled ctx = %d, %v", n, err)
		}
	})
	t.Run("AfterTx stops", func(t *testing.T) {
		stop := errors.New("enough")
		seen := 0
		g.cfg.AfterTx = func(Tx) error {
			if seen++; seen == 3 {
				return stop
			}
			return nil
		}
		defer func() { g.cfg.AfterTx = nil }()
		if n, err := g.Run(context.Background(), 10, 0); n != 3 || !errors.Is(err, stop) {
			t.Fatalf("Run = %d, %v; want 3, %v", n, err, stop)
		}
	})
	t.Run("closed", func(t *testing.T) {
		g.Close()
		if _, err := g.Tx(context.Background()); err == nil {
			t.Fatal("Tx after Close succeeded")
		}
		if _, err := g.Mark(context.Background()); err == nil {
			t.Fatal("Mark after Close succeeded")
		}
		if err := g.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// The high-churn families see deletes as well as puts, so they stay small
// however long the generator runs, and every one of them was written.
func TestChurnFamiliesStayBounded(t *testing.T) {
	s := shapedStore(t)
	for _, tc := range []struct {
		fam string
		max int
	}{
		{"f", maxTasks}, {"q", maxQueued}, {"m", 48}, {"j", 200}, {"u", 4}, {"y", len(s.g.m.accounts)},
	} {
		keys, _ := scan(t, s.g, tc.fam)
		if len(keys) == 0 || len(keys) > tc.max {
			t.Errorf("family %s holds %d keys, want 1..%d", tc.fam, len(keys), tc.max)
		}
	}
}
