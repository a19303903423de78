package walpin

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/linxGnu/grocksdb"
)

type truth struct {
	seq  uint64
	data []byte
}

// primary is a RocksDB store whose WAL the tests read; every batch it
// writes is also captured through RocksDB's own GetUpdatesSince.
type primary struct {
	t     *testing.T
	dir   string
	db    *grocksdb.DB
	opts  *grocksdb.Options
	truth []truth
}

func newPrimary(t *testing.T, writeBuffer uint64) *primary {
	dir := filepath.Join(t.TempDir(), "db")
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	o.SetWriteBufferSize(writeBuffer)
	db, err := grocksdb.OpenDb(o, dir)
	if err != nil {
		t.Fatal(err)
	}
	p := &primary{t: t, dir: dir, db: db, opts: o}
	t.Cleanup(func() { db.Close(); o.Destroy() })
	return p
}

// write writes one batch of n puts with values of size bytes.
func (p *primary) write(n, size int) {
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	for i := 0; i < n; i++ {
		wb.Put([]byte(fmt.Sprintf("k-%d-%d", len(p.truth), i)), bytes.Repeat([]byte{byte(i)}, size))
	}
	if len(p.truth)%7 == 3 {
		wb.Delete([]byte("gone"))
		wb.DeleteRange([]byte("a"), []byte("b"))
	}
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	before := p.db.GetLatestSequenceNumber()
	if err := p.db.Write(wo, wb); err != nil {
		p.t.Fatal(err)
	}
	it, err := p.db.GetUpdatesSince(before + 1)
	if err != nil {
		p.t.Fatal(err)
	}
	defer it.Destroy()
	if !it.Valid() {
		p.t.Fatalf("RocksDB lost the batch at %d", before+1)
	}
	b, seq := it.GetBatch()
	p.truth = append(p.truth, truth{seq, bytes.Clone(b.Data())})
	b.Destroy()
}

func (p *primary) flush() {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	if err := p.db.Flush(fo); err != nil {
		p.t.Fatal(err)
	}
}

func (p *primary) wals() []string {
	m, _ := filepath.Glob(filepath.Join(p.dir, "*.log"))
	return m
}

func TestReadFileMatchesRocksDB(t *testing.T) {
	p := newPrimary(t, 64<<20)
	for i := 0; i < 40; i++ {
		switch {
		case i%10 == 5:
			p.write(3, 100<<10) // a 300 KiB batch: FIRST, MIDDLE..., LAST fragments
		default:
			p.write(1+i%4, 10+i*50)
		}
	}
	wals := p.wals()
	if len(wals) != 1 {
		t.Fatalf("%d WAL files, want 1 (no flush happened)", len(wals))
	}
	n, _ := walNumber(filepath.Base(wals[0]))
	var got [][]byte
	if err := ReadFile(wals[0], n, func(b []byte) error { got = append(got, bytes.Clone(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(p.truth) {
		t.Fatalf("read %d batches, RocksDB wrote %d", len(got), len(p.truth))
	}
	for i := range got {
		if !bytes.Equal(got[i], p.truth[i].data) {
			t.Fatalf("batch %d differs from RocksDB's (%d vs %d bytes)", i, len(got[i]), len(p.truth[i].data))
		}
	}
}

func TestTornTailsEndQuietly(t *testing.T) {
	p := newPrimary(t, 64<<20)
	for i := 0; i < 6; i++ {
		p.write(2, 5000)
	}
	data, err := os.ReadFile(p.wals()[0])
	if err != nil {
		t.Fatal(err)
	}
	n, _ := walNumber(filepath.Base(p.wals()[0]))
	prev := 0
	for cut := 0; cut <= len(data); cut++ {
		count := 0
		if _, err := read(data[:cut], 0, n, func([]byte, int64) error { count++; return nil }); err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if count < prev {
			t.Fatalf("cut at %d read %d batches, a shorter cut read %d", cut, count, prev)
		}
		prev = count
	}
	if prev != 6 {
		t.Fatalf("whole file read %d batches, want 6", prev)
	}
	// A flipped byte in the first of several blocks is corruption, not a tail.
	big := newPrimary(t, 64<<20)
	for i := 0; i < 8; i++ {
		big.write(2, 20000)
	}
	data, _ = os.ReadFile(big.wals()[0])
	data[100] ^= 0xff
	n, _ = walNumber(filepath.Base(big.wals()[0]))
	if _, err := read(data, 0, n, func([]byte, int64) error { return nil }); err == nil {
		t.Fatal("corruption in the middle of a WAL was not reported")
	}
}

func TestPinsBridgeDeletedWAL(t *testing.T) {
	p := newPrimary(t, 64<<20)
	pins, err := New(p.dir, filepath.Join(t.TempDir(), "pins"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 4; round++ {
		for i := 0; i < 20; i++ {
			p.write(2, 3000)
		}
		if _, err := pins.Pin(); err != nil {
			t.Fatal(err)
		}
		p.flush() // the primary deletes the WAL it just filled
	}
	p.write(1, 10)
	if _, err := pins.Pin(); err != nil {
		t.Fatal(err)
	}
	latest := p.db.GetLatestSequenceNumber()
	// RocksDB itself can no longer serve the early batches...
	it, err := p.db.GetUpdatesSince(1)
	if err == nil {
		if it.Valid() {
			if _, seq := it.GetBatch(); seq == 1 {
				t.Log("RocksDB still had the first WAL; the test proves less")
			}
		}
		it.Destroy()
	}
	// ...the pins can.
	var got []truth
	if _, err := pins.Next(Cursor{}, 1, latest, func(seq uint64, data []byte) error {
		got = append(got, truth{seq, data})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(p.truth) {
		t.Fatalf("pins delivered %d batches, the primary wrote %d", len(got), len(p.truth))
	}
	for i := range got {
		if got[i].seq != p.truth[i].seq || !bytes.Equal(got[i].data, p.truth[i].data) {
			t.Fatalf("pinned batch %d (seq %d) differs from RocksDB's (seq %d)", i, got[i].seq, p.truth[i].seq)
		}
	}
	// A read from the middle starts in the file that holds it.
	mid := p.truth[len(p.truth)/2]
	var first uint64
	if _, err := pins.Next(Cursor{}, mid.seq, latest, func(seq uint64, _ []byte) error {
		if first == 0 && seq >= mid.seq {
			first = seq
		}
		return nil
	}); err != nil || first != mid.seq {
		t.Fatalf("read from %d started at %d (%v)", mid.seq, first, err)
	}
	// Everything shipped: all pins but the newest go.
	files, _ := pins.Stats()
	released, err := pins.Release(latest)
	if err != nil {
		t.Fatal(err)
	}
	left, _ := pins.Stats()
	if files < 4 || released != files-1 || left != 1 {
		t.Fatalf("had %d pins, released %d, %d left; want all but one released", files, released, left)
	}
	// Nothing shipped: nothing released.
	again, _ := New(p.dir, pins.dir, nil) // adopts the pins left on disk
	if r, _ := again.Release(0); r != 0 {
		t.Fatalf("released %d pins with nothing shipped", r)
	}
}

// TestCursorFollowsLiveWAL reads a WAL while RocksDB writes it, poll after
// poll, across WAL switches and deletions: every batch exactly once, equal
// to RocksDB's own, and never past the bound it was given.
func TestCursorFollowsLiveWAL(t *testing.T) {
	p := newPrimary(t, 64<<20)
	pins, err := New(p.dir, filepath.Join(t.TempDir(), "pins"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cur Cursor
	var got []truth
	want := uint64(1)
	poll := func(to uint64) {
		cur, err = pins.Next(cur, want, to, func(seq uint64, data []byte) error {
			if seq > to {
				t.Fatalf("delivered batch %d past the bound %d", seq, to)
			}
			got = append(got, truth{seq, data})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 12; round++ {
		for i := 0; i < 5+round; i++ {
			p.write(1+i%3, 2000+round*3000) // some batches span blocks
		}
		// Bound below the newest batch: the last one must wait for the next poll.
		poll(p.truth[len(p.truth)-1].seq - 1)
		if round%3 == 2 {
			p.flush() // a new WAL file; the old one is deleted
		}
	}
	poll(p.db.GetLatestSequenceNumber())
	if len(got) != len(p.truth) {
		t.Fatalf("cursor delivered %d batches, RocksDB wrote %d", len(got), len(p.truth))
	}
	for i := range got {
		if got[i].seq != p.truth[i].seq || !bytes.Equal(got[i].data, p.truth[i].data) {
			t.Fatalf("batch %d: seq %d vs RocksDB's %d, or different bytes", i, got[i].seq, p.truth[i].seq)
		}
	}
	// A cursor-less start in the middle finds the right file.
	mid := p.truth[len(p.truth)*2/3]
	var first uint64
	if _, err := pins.Next(Cursor{}, mid.seq, mid.seq, func(seq uint64, _ []byte) error {
		if first == 0 && seq >= mid.seq {
			first = seq
		}
		return nil
	}); err != nil || first != mid.seq {
		t.Fatalf("cursor-less read for %d found %d (%v)", mid.seq, first, err)
	}
}

// TestDirectReadsInPlaceAndNeverDeletes: without pinning, the primary's
// WAL files are read in place; a file the primary deleted is a gap the
// caller sees (a later first batch, or ErrNotPinned), and neither Release
// nor Reset ever removes a file of the primary.
func TestDirectReadsInPlaceAndNeverDeletes(t *testing.T) {
	p := newPrimary(t, 64<<20)
	d := NewDirect(p.dir, nil)
	if d.Disabled() == "" {
		t.Fatal("a direct Pinner says pinning works")
	}
	for i := 0; i < 10; i++ {
		p.write(2, 3000)
	}
	var got []truth
	collect := func(seq uint64, data []byte) error { got = append(got, truth{seq, data}); return nil }
	cur, err := d.Next(Cursor{}, 1, math.MaxUint64, collect)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(p.truth) || got[len(got)-1].seq != p.truth[len(p.truth)-1].seq {
		t.Fatalf("read %d batches in place, the primary wrote %d", len(got), len(p.truth))
	}
	wals := p.wals()
	if _, err := d.Release(p.db.GetLatestSequenceNumber()); err != nil {
		t.Fatal(err)
	}
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	if files, _ := d.Stats(); files != 0 {
		t.Fatalf("a direct Pinner reports %d pins", files)
	}
	for _, w := range wals {
		if _, err := os.Stat(w); err != nil {
			t.Fatalf("the primary's WAL %s is gone after Release/Reset: %v", w, err)
		}
	}
	// The primary deletes the WAL holding unread batches: the next batch
	// read is from a later file, and a fresh search finds nothing.
	n := len(p.truth)
	p.write(1, 100)
	p.flush()
	for i := 0; i < 3; i++ {
		p.write(1, 100)
	}
	got = nil
	_, err = d.Next(cur, p.truth[n].seq, math.MaxUint64, collect)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].seq == p.truth[n].seq {
		t.Fatalf("after the primary deleted its WAL the reader delivered %d batches starting at %v; want a later start (a gap)", len(got), got)
	}
	if _, err := d.Next(Cursor{}, p.truth[n].seq, math.MaxUint64, collect); !errors.Is(err, ErrNotPinned) {
		t.Fatalf("searching for a deleted batch: %v, want ErrNotPinned", err)
	}
}
