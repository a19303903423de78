package changelog

import (
	"errors"
	"reflect"
	"testing"

	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
)

// lCF is the family id of `l` in the batches these tests build; real
// stores give it whatever id RocksDB assigned, so it is not 0 on purpose.
const lCF = 17

func put(cf uint32, key, value []byte) wbatch.Record {
	return wbatch.Record{Op: wbatch.OpPut, CF: cf, Key: key, Value: value}
}

func lPut(acct uint32, c Collection, id uint64, value []byte) wbatch.Record {
	return put(lCF, EncodeKey(Key{acct, c, id}), value)
}

func lRange(from, to Key) wbatch.Record {
	return wbatch.Record{Op: wbatch.OpDeleteRange, CF: lCF, Key: EncodeKey(from), Value: EncodeKey(to)}
}

func batch(seq uint64, capture int64, recs ...wbatch.Record) segment.Batch {
	b := wbatch.NewBuilder(seq)
	for _, r := range recs {
		b.Add(r)
	}
	return segment.Batch{Seq: seq, CaptureUnixMs: capture, Data: b.Bytes()}
}

func TestScan(t *testing.T) {
	delivery := EncodeChangeSet(ChangeSet{ContainerUpdates: []uint64{1}, ContainerPropertyChanges: []uint64{2}, ItemInserts: []uint64{1<<32 | 5, 1<<32 | 6}})
	expunge := EncodeChangeSet(ChangeSet{ContainerDeletes: []uint64{3}, ItemDeletes: []uint64{9}})
	b := batch(1000, 1_700_000_000_123,
		put(3, []byte("p-key"), []byte("not a change set")),                                        // other family: ignored
		put(0, EncodeKey(Key{1, Email, 1}), []byte{0x80}),                                          // default family, l-shaped: ignored
		lPut(17, Email, 5120, delivery),                                                            // change set
		wbatch.Record{Op: wbatch.OpMerge, CF: 2, Key: []byte{0, 0, 0, 17}, Value: make([]byte, 8)}, // counter merge: ignored
		lPut(17, Thread, 5120, expunge),                                                            // container + item deletes
		lPut(17, VanishedEmail, 5120, EncodeVanished([]uint64{9, 10, 11})),                         // vanished
		lRange(Key{4, Email, 0}, Key{4, Email, 300}),                                               // Stalwart's purge
		lPut(4, Email, 300, nil),                                                                   // its truncation marker
		lPut(17, ShareNotification, 5120, []byte{1, 2, 3}),                                         // opaque
		lPut(17, Collection(77), 5120, []byte{0xff}),                                               // unknown collection
		lPut(18, Email, 7, []byte{0, 0, 0, 0, 9, 0, 0, 1}),                                         // malformed value: kept, flagged
		put(lCF, append(EncodeKey(Key{18, Email, 8}), 0xee), EncodeChangeSet(ChangeSet{})),         // malformed key: counted only
		wbatch.Record{Op: wbatch.OpDelete, CF: lCF, Key: EncodeKey(Key{18, Email, 1})},             // not Stalwart's: Other
		wbatch.Record{Tag: wbatch.TagLogData, Op: wbatch.OpLogData, Value: []byte("note")},         // not counted, no family
	)
	changes, purges, st, err := Scan(b, lCF)
	if err != nil {
		t.Fatal(err)
	}
	const seq, last, ms = 1000, 1000 + 13 - 1, 1_700_000_000_123 // 13 counted records
	want := []Change{
		{Seq: seq, LastSeq: last, CaptureUnixMs: ms, Account: 17, Collection: Email, ChangeID: 5120, Inserts: 2, Updates: 2},
		{Seq: seq, LastSeq: last, CaptureUnixMs: ms, Account: 17, Collection: Thread, ChangeID: 5120, Deletes: 2},
		{Seq: seq, LastSeq: last, CaptureUnixMs: ms, Account: 17, Collection: VanishedEmail, ChangeID: 5120, Deletes: 3},
		{Seq: seq, LastSeq: last, CaptureUnixMs: ms, Account: 4, Collection: Email, ChangeID: 300, Truncation: true},
		{Seq: seq, LastSeq: last, CaptureUnixMs: ms, Account: 17, Collection: ShareNotification, ChangeID: 5120, Opaque: true},
		{Seq: seq, LastSeq: last, CaptureUnixMs: ms, Account: 17, Collection: Collection(77), ChangeID: 5120, Opaque: true},
		{Seq: seq, LastSeq: last, CaptureUnixMs: ms, Account: 18, Collection: Email, ChangeID: 7, Malformed: true},
	}
	if !reflect.DeepEqual(changes, want) {
		t.Errorf("changes:\n got %+v\nwant %+v", changes, want)
	}
	wantPurges := []Purge{{Seq: seq, Account: 4, Collection: Email, FromChange: 0, EndAccount: 4, EndCollection: Email, ToChange: 300}}
	if !reflect.DeepEqual(purges, wantPurges) {
		t.Errorf("purges = %+v, want %+v", purges, wantPurges)
	}
	if !purges[0].SingleCollection() {
		t.Error("Stalwart's purge is not SingleCollection")
	}
	wantStats := Stats{Entries: 8, Malformed: 2, UnknownCollections: 1, Truncations: 1, Purges: 1, Other: 1}
	if st != wantStats {
		t.Errorf("stats = %+v, want %+v", st, wantStats)
	}

	// Read with another family id, the records of that family are the
	// changelog: here family 3 has one put whose key is not 13 bytes.
	// With NoFamily nothing is.
	for _, tc := range []struct {
		cf   uint32
		want Stats
	}{{3, Stats{Entries: 1, Malformed: 1}}, {NoFamily, Stats{}}} {
		c, p, st, err := Scan(b, tc.cf)
		if err != nil || c != nil || p != nil || st != tc.want {
			t.Errorf("Scan(family %d) = %v, %v, %+v, %v; want stats %+v", tc.cf, c, p, st, err, tc.want)
		}
	}
}

func TestScanCorruptBatch(t *testing.T) {
	good := batch(5, 1, lPut(1, Email, 1, EncodeChangeSet(ChangeSet{ItemInserts: []uint64{1}}))).Data
	for n := 0; n < len(good); n++ {
		c, p, st, err := Scan(segment.Batch{Seq: 5, Data: good[:n]}, lCF)
		if !errors.Is(err, wbatch.ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: err = %v, want ErrCorrupt", n, err)
		}
		if c != nil || p != nil || st != (Stats{}) {
			t.Fatalf("truncated to %d bytes: returned %v %v %+v with the error", n, c, p, st)
		}
	}
}

func TestScanEmptyBatch(t *testing.T) {
	c, p, st, err := Scan(batch(9, 1), lCF)
	if err != nil || c != nil || p != nil || st != (Stats{}) {
		t.Fatalf("empty batch: %v %v %+v %v", c, p, st, err)
	}
}

func TestPurgeRanges(t *testing.T) {
	ff := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 0xff
		}
		return b
	}
	tests := []struct {
		name       string
		start, end []byte
		want       Purge
		single     bool
		in, out    []Key
	}{
		{
			name:  "stalwart purge",
			start: EncodeKey(Key{17, Email, 0}), end: EncodeKey(Key{17, Email, 5120}),
			want:   Purge{Account: 17, Collection: Email, FromChange: 0, EndAccount: 17, EndCollection: Email, ToChange: 5120},
			single: true,
			in:     []Key{{17, Email, 0}, {17, Email, 5119}},
			out:    []Key{{17, Email, 5120}, {17, Thread, 1}, {16, Email, 1}, {18, Email, 0}},
		},
		{
			name:  "vanished purge",
			start: EncodeKey(Key{17, VanishedEmail, 0}), end: EncodeKey(Key{17, VanishedEmail, 9}),
			want:   Purge{Account: 17, Collection: VanishedEmail, EndAccount: 17, EndCollection: VanishedEmail, ToChange: 9},
			single: true,
			in:     []Key{{17, VanishedEmail, 8}},
			out:    []Key{{17, VanishedEmail, 9}, {17, Email, 8}},
		},
		{
			// Stalwart's changelog reset: [0x00] to seven 0xff bytes.
			name:  "reset",
			start: []byte{0}, end: ff(7),
			want: Purge{EndAccount: 0xffffffff, EndCollection: 0xff, ToChange: 0xffff << 48},
			in:   []Key{{0, Email, 0}, {5, VanishedFileNode, 1 << 60}, {0xffffffff, 0xff, 0xfffeffffffffffff}},
			out:  []Key{{0xffffffff, 0xff, 0xffff << 48}},
		},
		{
			name:  "whole account",
			start: []byte{0, 0, 0, 3}, end: []byte{0, 0, 0, 4},
			want: Purge{Account: 3, EndAccount: 4},
			in:   []Key{{3, Email, 0}, {3, 255, 1<<64 - 1}},
			out:  []Key{{2, 255, 1<<64 - 1}, {4, Email, 0}},
		},
		{
			name:  "longer keys round up",
			start: append(EncodeKey(Key{1, Email, 5}), 0), end: append(EncodeKey(Key{1, Email, 9}), 0),
			want:   Purge{Account: 1, Collection: Email, FromChange: 6, EndAccount: 1, EndCollection: Email, ToChange: 10},
			single: true,
			in:     []Key{{1, Email, 6}, {1, Email, 9}},
			out:    []Key{{1, Email, 5}, {1, Email, 10}},
		},
		{
			name:  "end past every key",
			start: EncodeKey(Key{9, Thread, 1}), end: ff(14),
			want: Purge{Account: 9, Collection: Thread, FromChange: 1, ToEnd: true},
			in:   []Key{{9, Thread, 1}, {0xffffffff, 0xff, 1<<64 - 1}},
			out:  []Key{{9, Thread, 0}},
		},
		{
			name:  "start past every key",
			start: ff(20), end: ff(21),
			want:   Purge{Account: 0xffffffff, Collection: 0xff, FromChange: 1<<64 - 1, EndAccount: 0xffffffff, EndCollection: 0xff, ToChange: 1<<64 - 1},
			single: true,
			out:    []Key{{0xffffffff, 0xff, 1<<64 - 1}},
		},
		{
			name:  "empty keys",
			start: nil, end: nil,
			want:   Purge{},
			single: true,
			out:    []Key{{0, Email, 0}},
		},
		{
			name:  "start after end",
			start: EncodeKey(Key{2, Email, 9}), end: EncodeKey(Key{2, Email, 3}),
			want:   Purge{Account: 2, Collection: Email, FromChange: 9, EndAccount: 2, EndCollection: Email, ToChange: 9},
			single: true,
			out:    []Key{{2, Email, 3}, {2, Email, 9}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := batch(50, 1, wbatch.Record{Op: wbatch.OpDeleteRange, CF: lCF, Key: tc.start, Value: tc.end})
			_, purges, st, err := Scan(b, lCF)
			if err != nil {
				t.Fatal(err)
			}
			if len(purges) != 1 || st.Purges != 1 || st.Malformed != 0 {
				t.Fatalf("purges = %+v, stats %+v", purges, st)
			}
			p := purges[0]
			tc.want.Seq = 50
			if p != tc.want {
				t.Fatalf("purge = %+v, want %+v", p, tc.want)
			}
			if p.SingleCollection() != tc.single {
				t.Errorf("SingleCollection = %v", p.SingleCollection())
			}
			for _, k := range tc.in {
				if !p.Covers(k) {
					t.Errorf("does not cover %v", k)
				}
			}
			for _, k := range tc.out {
				if p.Covers(k) {
					t.Errorf("covers %v", k)
				}
			}
		})
	}
}

func TestFamilyID(t *testing.T) {
	fams := []segment.Family{{ID: 0, Name: "default"}, {ID: 1, Name: "n"}, {ID: 13, Name: "l"}, {ID: 14, Name: "ll"}}
	if id, ok := FamilyID(fams); !ok || id != 13 {
		t.Fatalf("FamilyID = %d, %v, want 13", id, ok)
	}
	if id, ok := FamilyID(fams[:2]); ok || id != NoFamily {
		t.Fatalf("FamilyID without l = %d, %v", id, ok)
	}
}
