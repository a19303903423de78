package walpin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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

// sourceKinds are the two Source implementations; every case of
// TestSources runs against each.
var sourceKinds = []struct {
	name string
	open func(t *testing.T, primary string) Source
	// keepsDeleted: batches of a WAL file the primary deleted after a
	// Refresh stay readable.
	keepsDeleted bool
}{
	{"pinned", func(t *testing.T, primary string) Source {
		s, err := New(primary, filepath.Join(t.TempDir(), "pins"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, true},
	{"in place", func(_ *testing.T, primary string) Source { return NewInPlace(primary, nil) }, false},
}

// collect returns a Next callback appending to *got.
func collect(got *[]truth) func(uint64, []byte) error {
	return func(seq uint64, data []byte) error { *got = append(*got, truth{seq, data}); return nil }
}

// sameAs fails unless got is exactly want, batch for batch.
func sameAs(t *testing.T, got, want []truth) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("delivered %d batches, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].seq != want[i].seq || !bytes.Equal(got[i].data, want[i].data) {
			t.Fatalf("batch %d: seq %d, want %d (or different bytes)", i, got[i].seq, want[i].seq)
		}
	}
}

// TestSources runs the same cases against a Pinned and an InPlace source:
// what they deliver from the primary's WAL, equal to what RocksDB itself
// serves, and how they stop.
func TestSources(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, p *primary, s Source, keepsDeleted bool)
	}{
		{"everything from the first batch", func(t *testing.T, p *primary, s Source, _ bool) {
			for i := 0; i < 30; i++ {
				p.write(1+i%3, 100+i*400)
			}
			var got []truth
			if _, err := s.Next(context.Background(), Cursor{}, 1, math.MaxUint64, collect(&got)); err != nil {
				t.Fatal(err)
			}
			sameAs(t, got, p.truth)
		}},
		{"a cursor-less start in the middle finds the file", func(t *testing.T, p *primary, s Source, _ bool) {
			for i := 0; i < 30; i++ {
				p.write(2, 3000)
				if i == 9 || i == 19 {
					if _, err := s.Refresh(); err != nil {
						t.Fatal(err)
					}
					p.flush() // several files (an in-place reader keeps only the live one)
				}
			}
			mid := p.truth[25]
			var got []truth
			if _, err := s.Next(context.Background(), Cursor{}, mid.seq, math.MaxUint64, collect(&got)); err != nil {
				t.Fatal(err)
			}
			i := 0
			for i < len(got) && got[i].seq < mid.seq {
				i++
			}
			sameAs(t, got[i:], p.truth[25:])
		}},
		{"nothing past the bound", func(t *testing.T, p *primary, s Source, _ bool) {
			for i := 0; i < 20; i++ {
				p.write(1, 500)
			}
			to := p.truth[11].seq
			var got []truth
			cur, err := s.Next(context.Background(), Cursor{}, 1, to, collect(&got))
			if err != nil {
				t.Fatal(err)
			}
			sameAs(t, got, p.truth[:12])
			got = nil // the cursor goes on where the bound stopped it
			if _, err := s.Next(context.Background(), cur, to+1, math.MaxUint64, collect(&got)); err != nil {
				t.Fatal(err)
			}
			sameAs(t, got, p.truth[12:])
		}},
		{"a WAL file the primary deleted", func(t *testing.T, p *primary, s Source, keepsDeleted bool) {
			for i := 0; i < 10; i++ {
				p.write(2, 3000)
			}
			if _, err := s.Refresh(); err != nil {
				t.Fatal(err)
			}
			p.flush() // the primary deletes the WAL it just filled
			p.write(1, 10)
			var got []truth
			_, err := s.Next(context.Background(), Cursor{}, 1, math.MaxUint64, collect(&got))
			if keepsDeleted {
				if err != nil {
					t.Fatal(err)
				}
				sameAs(t, got, p.truth)
				return
			}
			if !errors.Is(err, ErrNotPinned) || len(got) != 0 {
				t.Fatalf("read %d batches, err %v; want none and ErrNotPinned (a gap)", len(got), err)
			}
		}},
		{"cancelled between records, resumable", func(t *testing.T, p *primary, s Source, _ bool) {
			for i := 0; i < 20; i++ {
				p.write(1, 2000)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got []truth
			cur, err := s.Next(ctx, Cursor{}, 1, math.MaxUint64, func(seq uint64, data []byte) error {
				got = append(got, truth{seq, data})
				if len(got) == 3 {
					cancel() // fn itself does not fail: Next must stop on its own
				}
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Next after cancel: %v, want context.Canceled", err)
			}
			if len(got) != 3 {
				t.Fatalf("Next delivered %d batches after ctx ended at the 3rd, want 3", len(got))
			}
			if _, err := s.Next(context.Background(), cur, got[2].seq+1, math.MaxUint64, collect(&got)); err != nil {
				t.Fatal(err)
			}
			sameAs(t, got, p.truth) // every batch exactly once
		}},
		{"an ended ctx reads nothing", func(t *testing.T, p *primary, s Source, _ bool) {
			p.write(1, 10)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var got []truth
			cur, err := s.Next(ctx, Cursor{}, 1, math.MaxUint64, collect(&got))
			if !errors.Is(err, context.Canceled) || len(got) != 0 || cur != (Cursor{}) {
				t.Fatalf("got %d batches, cursor %+v, err %v; want none, the same cursor, context.Canceled", len(got), cur, err)
			}
		}},
	}
	for _, k := range sourceKinds {
		for _, c := range cases {
			t.Run(k.name+"/"+c.name, func(t *testing.T) {
				p := newPrimary(t, 64<<20)
				c.run(t, p, k.open(t, p.dir), k.keepsDeleted)
			})
		}
	}
}

// TestCursorFollowsLiveWAL reads a WAL while RocksDB writes it, poll after
// poll, across WAL switches and deletions, with each source: every batch
// exactly once, equal to RocksDB's own, and never past the bound it was
// given.
func TestCursorFollowsLiveWAL(t *testing.T) {
	for _, k := range sourceKinds {
		t.Run(k.name, func(t *testing.T) {
			p := newPrimary(t, 64<<20)
			s := k.open(t, p.dir)
			var cur Cursor
			var got []truth
			want := uint64(1)
			poll := func(to uint64) {
				var err error
				cur, err = s.Next(context.Background(), cur, want, to, func(seq uint64, data []byte) error {
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
				if round%3 == 2 {
					// Everything read before the primary switches files and
					// deletes the old one (an in-place reader cannot read it later).
					poll(math.MaxUint64)
					p.flush()
					continue
				}
				// Bound below the newest batch: the last one must wait for the next poll.
				poll(p.truth[len(p.truth)-1].seq - 1)
			}
			poll(p.db.GetLatestSequenceNumber())
			sameAs(t, got, p.truth)
		})
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
		if _, err := pins.Refresh(); err != nil {
			t.Fatal(err)
		}
		p.flush() // the primary deletes the WAL it just filled
	}
	p.write(1, 10)
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
	if _, err := pins.Next(context.Background(), Cursor{}, 1, latest, collect(&got)); err != nil {
		t.Fatal(err)
	}
	sameAs(t, got, p.truth)
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

// TestInPlaceNeverDeletes: neither Release nor Reset of an InPlace source
// removes a file of the primary, and it reports no pins.
func TestInPlaceNeverDeletes(t *testing.T) {
	p := newPrimary(t, 64<<20)
	d := NewInPlace(p.dir, nil)
	if d.Disabled() == "" {
		t.Fatal("an InPlace source says pinning works")
	}
	for i := 0; i < 10; i++ {
		p.write(2, 3000)
	}
	var got []truth
	if _, err := d.Next(context.Background(), Cursor{}, 1, math.MaxUint64, collect(&got)); err != nil {
		t.Fatal(err)
	}
	wals := p.wals()
	if _, err := d.Release(p.db.GetLatestSequenceNumber()); err != nil {
		t.Fatal(err)
	}
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	if files, _ := d.Stats(); files != 0 {
		t.Fatalf("an InPlace source reports %d pins", files)
	}
	for _, w := range wals {
		if _, err := os.Stat(w); err != nil {
			t.Fatalf("the primary's WAL %s is gone after Release/Reset: %v", w, err)
		}
	}
}

// TestPinnedReadsInPlaceWhereLinksFail: when the kernel refuses hard links
// (another filesystem), a Pinned source says so and reads the primary's
// files in place; it never removes them, and the pins it made before stay
// until released.
func TestPinnedReadsInPlaceWhereLinksFail(t *testing.T) {
	p := newPrimary(t, 64<<20)
	pins, err := New(p.dir, filepath.Join(t.TempDir(), "pins"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		p.write(2, 3000)
	}
	if n, err := pins.Refresh(); err != nil || n != 1 {
		t.Fatalf("pinned %d files (%v), want 1", n, err)
	}
	p.flush() // the pinned file is deleted by the primary; only the pin has it
	pins.link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
	for i := 0; i < 5; i++ {
		p.write(2, 3000)
	}
	if n, err := pins.Refresh(); err != nil || n != 0 {
		t.Fatalf("Refresh with failing links: %d linked, %v; want 0, no error", n, err)
	}
	if pins.Disabled() == "" {
		t.Fatal("links fail, but Disabled says pinning works")
	}
	var got []truth
	if _, err := pins.Next(context.Background(), Cursor{}, 1, math.MaxUint64, collect(&got)); err != nil {
		t.Fatal(err)
	}
	sameAs(t, got, p.truth) // the old pin bridges, the new file is read in place
	wals := p.wals()
	if files, _ := pins.Stats(); files != 1 {
		t.Fatalf("%d pins, want the 1 made before links failed", files)
	}
	if err := pins.Reset(); err != nil {
		t.Fatal(err)
	}
	for _, w := range wals {
		if _, err := os.Stat(w); err != nil {
			t.Fatalf("the primary's WAL %s is gone after Reset: %v", w, err)
		}
	}
}

// TestPinnedListsOnlyAChangedDir: Next lists the primary's directory
// only when it may hold entries the last listing did not see (its mtime
// moved, or is too recent to tell), and a WAL file created after that is
// still found and read.
func TestPinnedListsOnlyAChangedDir(t *testing.T) {
	p := newPrimary(t, 64<<20)
	pins, err := New(p.dir, filepath.Join(t.TempDir(), "pins"), nil)
	if err != nil {
		t.Fatal(err)
	}
	listings := 0
	pins.readDir = func(name string) ([]os.DirEntry, error) { listings++; return os.ReadDir(name) }
	var got []truth
	var cur Cursor
	read := func() {
		var err error
		cur, err = pins.Next(context.Background(), cur, uint64(len(got)+1), math.MaxUint64, collect(&got))
		if err != nil {
			t.Fatal(err)
		}
	}
	age := func() { // as if the last change were long ago
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(p.dir, old, old); err != nil {
			t.Fatal(err)
		}
	}
	p.write(2, 100)
	age()
	read()
	if listings != 1 {
		t.Fatalf("first Next listed the directory %d times, want 1", listings)
	}
	for i := 0; i < 20; i++ {
		p.write(1, 100) // appends to the WAL file: the directory is unchanged
		read()
	}
	if listings != 1 {
		t.Errorf("Next listed an unchanged directory: %d listings after 21 reads, want 1", listings)
	}
	p.flush() // a new WAL file (and an SST): the directory changed
	p.write(3, 100)
	read()
	if listings != 2 {
		t.Errorf("%d listings after the directory changed, want 2", listings)
	}
	sameAs(t, got, p.truth)
}

// TestPinnedWatchTellsOfNewFiles: while Run's watch pins new WAL files,
// Next lists nothing itself, and OnNewFile's callback comes after a new
// file is readable by Next.
func TestPinnedWatchTellsOfNewFiles(t *testing.T) {
	p := newPrimary(t, 64<<20)
	pins, err := New(p.dir, filepath.Join(t.TempDir(), "pins"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var listings atomic.Int64
	pins.readDir = func(name string) ([]os.DirEntry, error) { listings.Add(1); return os.ReadDir(name) }
	woke := make(chan struct{}, 1)
	pins.OnNewFile(func() {
		select {
		case woke <- struct{}{}:
		default:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); pins.Run(ctx, time.Hour) }()
	defer func() { cancel(); <-done }()
	for !pins.watching.Load() || listings.Load() == 0 { // the watch is up and Run's first scan done
		time.Sleep(time.Millisecond)
	}
	var got []truth
	var cur Cursor
	read := func() {
		var err error
		cur, err = pins.Next(context.Background(), cur, uint64(len(got)+1), math.MaxUint64, collect(&got))
		if err != nil {
			t.Fatal(err)
		}
	}
	p.write(2, 100)
	drain(woke)
	before := listings.Load()
	for i := 0; i < 10; i++ {
		p.write(1, 100)
		read()
	}
	p.flush() // a new WAL file
	select {
	case <-woke:
	case <-time.After(20 * time.Second):
		t.Fatal("no OnNewFile call after the primary started a new WAL file")
	}
	p.write(3, 100)
	read()
	if n := listings.Load() - before; n != 0 {
		t.Errorf("Next listed the directory %d times while the watch was up", n)
	}
	sameAs(t, got, p.truth)
}

func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}
