package changelog

import (
	"errors"
	"reflect"
	"testing"

	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
)

func TestLabeler(t *testing.T) {
	ins := EncodeChangeSet(ChangeSet{ItemInserts: []uint64{1}})
	upd := EncodeChangeSet(ChangeSet{ItemUpdates: []uint64{1}})
	batches := []segment.Batch{
		batch(10, 2000,
			lPut(2, Email, 7, ins), lPut(2, Thread, 7, ins),
			put(3, []byte("other family"), []byte("x"))),
		batch(13, 1000, // capture times need not be monotonic
			lPut(1, Calendar, 40, upd), lPut(2, Email, 8, upd)),
		batch(15, 3000,
			// Stalwart's purge: the marker at old id 3 must not widen the
			// label of (2, email) nor count as account 2's newest change.
			lRange(Key{2, Email, 0}, Key{2, Email, 3}), lPut(2, Email, 3, nil),
			lPut(9, Email, 1, nil)), // a marker alone adds no label
		batch(18, 2500,
			lPut(1, Calendar, 39, upd), lPut(1, VanishedCalendar, 41, EncodeVanished([]uint64{5})),
			lPut(2, Collection(99), 9, []byte{1}), lPut(1, Email, 42, []byte{0x80})), // unknown, malformed value
		batch(22, 2600, put(3, []byte("no changelog here"), nil)),
	}
	l := NewLabeler(lCF)
	if got := l.Labels(); got != nil {
		t.Fatalf("empty Labeler has labels %v", got)
	}
	if lo, hi := l.CaptureRange(); lo != 0 || hi != 0 {
		t.Fatalf("empty capture range = %d..%d", lo, hi)
	}
	for _, b := range batches {
		if err := l.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	want := []segment.ChangeLabel{
		{Account: 1, Collection: uint8(Email), MinChange: 42, MaxChange: 42},
		{Account: 1, Collection: uint8(Calendar), MinChange: 39, MaxChange: 40},
		{Account: 1, Collection: uint8(VanishedCalendar), MinChange: 41, MaxChange: 41},
		{Account: 2, Collection: uint8(Email), MinChange: 7, MaxChange: 8},
		{Account: 2, Collection: uint8(Thread), MinChange: 7, MaxChange: 7},
		{Account: 2, Collection: 99, MinChange: 9, MaxChange: 9},
	}
	if got := l.Labels(); !reflect.DeepEqual(got, want) {
		t.Errorf("labels:\n got %+v\nwant %+v", got, want)
	}
	if lo, hi := l.CaptureRange(); lo != 1000 || hi != 3000 {
		t.Errorf("capture range = %d..%d, want 1000..3000", lo, hi)
	}
	if got, want := l.AccountChanges(), map[uint32]uint64{1: 42, 2: 9}; !reflect.DeepEqual(got, want) {
		t.Errorf("account changes = %v, want %v", got, want)
	}
	wantStats := Stats{Entries: 10, Malformed: 1, UnknownCollections: 1, Truncations: 2, Purges: 1}
	if got := l.Stats(); got != wantStats {
		t.Errorf("stats = %+v, want %+v", got, wantStats)
	}

	// A corrupt batch is an error and leaves everything as it was.
	bad := batch(30, 1, lPut(5, Email, 1, ins))
	bad.Data = bad.Data[:len(bad.Data)-1]
	if err := l.Add(bad); !errors.Is(err, wbatch.ErrCorrupt) {
		t.Fatalf("Add(corrupt) = %v, want ErrCorrupt", err)
	}
	if got := l.Labels(); !reflect.DeepEqual(got, want) {
		t.Errorf("labels changed by a corrupt batch: %+v", got)
	}
	if lo, hi := l.CaptureRange(); lo != 1000 || hi != 3000 {
		t.Errorf("capture range changed by a corrupt batch: %d..%d", lo, hi)
	}
	if l.Stats() != wantStats {
		t.Errorf("stats changed by a corrupt batch: %+v", l.Stats())
	}
	// AccountChanges is a copy.
	l.AccountChanges()[1] = 0
	if l.AccountChanges()[1] != 42 {
		t.Error("AccountChanges returned the Labeler's own map")
	}
}

func TestLabelerWithoutChangelog(t *testing.T) {
	l := NewLabeler(NoFamily)
	for _, b := range []segment.Batch{batch(1, 500, lPut(1, Email, 1, nil)), batch(2, 400, put(0, []byte("k"), nil))} {
		if err := l.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	if l.Labels() != nil || len(l.AccountChanges()) != 0 || l.Stats() != (Stats{}) {
		t.Fatalf("a store without l has labels %v, changes %v, stats %+v", l.Labels(), l.AccountChanges(), l.Stats())
	}
	if lo, hi := l.CaptureRange(); lo != 400 || hi != 500 {
		t.Fatalf("capture range = %d..%d, want 400..500", lo, hi)
	}
}
