package wbatch

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// openDB opens a scratch DB with families default, a, b so the test can
// build batches with RocksDB itself and compare our decoding with them.
func openDB(t *testing.T) (*grocksdb.DB, []*grocksdb.ColumnFamilyHandle) {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	names := []string{"default", "a", "b"}
	db, hs, err := grocksdb.OpenDbColumnFamilies(o, t.TempDir(), names, []*grocksdb.Options{o, o, o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range hs {
			h.Destroy()
		}
		db.Close()
		o.Destroy()
	})
	return db, hs
}

func TestEachMatchesRocksDB(t *testing.T) {
	_, hs := openDB(t)
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	wb.PutCF(hs[1], []byte("k1"), []byte("v1"))
	wb.Put([]byte("k0"), []byte("v0"))
	wb.DeleteCF(hs[2], []byte("gone"))
	wb.SingleDeleteCF(hs[1], []byte("once"))
	wb.DeleteRangeCF(hs[2], []byte("a"), []byte("m"))
	wb.MergeCF(hs[1], []byte("ctr"), []byte{1, 0, 0, 0, 0, 0, 0, 0})
	wb.PutLogData([]byte("note"))
	wb.Delete([]byte("d0"))

	got, err := Records(wb.Data())
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{Tag: TagCFValue, Op: OpPut, CF: hs[1].ID(), Key: []byte("k1"), Value: []byte("v1")},
		{Tag: TagValue, Op: OpPut, Key: []byte("k0"), Value: []byte("v0")},
		{Tag: TagCFDeletion, Op: OpDelete, CF: hs[2].ID(), Key: []byte("gone")},
		{Tag: TagCFSingleDeletion, Op: OpSingleDelete, CF: hs[1].ID(), Key: []byte("once")},
		{Tag: TagCFRangeDeletion, Op: OpDeleteRange, CF: hs[2].ID(), Key: []byte("a"), Value: []byte("m")},
		{Tag: TagCFMerge, Op: OpMerge, CF: hs[1].ID(), Key: []byte("ctr"), Value: []byte{1, 0, 0, 0, 0, 0, 0, 0}},
		{Tag: TagLogData, Op: OpLogData, Value: []byte("note")},
		{Tag: TagDeletion, Op: OpDelete, Key: []byte("d0")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Errorf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	h, _ := ReadHeader(wb.Data())
	if h.Count != uint32(wb.Count()) || h.Count != 7 {
		t.Fatalf("count = %d, RocksDB says %d, want 7 (log data is not counted)", h.Count, wb.Count())
	}
	// Our builder writes the same bytes as RocksDB for the same records.
	b := NewBuilder(0)
	for _, r := range want {
		b.Add(r)
	}
	if !bytes.Equal(b.Bytes(), wb.Data()) {
		t.Fatalf("builder bytes differ from RocksDB's:\n ours %x\n rdb  %x", b.Bytes(), wb.Data())
	}
}

func TestRemapAppliesToOtherFamilies(t *testing.T) {
	db, hs := openDB(t)
	// A source batch written against ids 7 (-> a) and 9 (-> b) and 0.
	src := NewBuilder(100).
		Add(Record{Op: OpPut, CF: 7, Key: []byte("x"), Value: []byte("1")}).
		Add(Record{Op: OpPut, CF: 9, Key: []byte("y"), Value: []byte("2")}).
		Add(Record{Op: OpPut, CF: 0, Key: []byte("z"), Value: []byte("3")}).
		Add(Record{Op: OpDeleteRange, CF: 9, Key: []byte("y"), Value: []byte("yz")}).
		Bytes()
	ids := map[uint32]uint32{0: 0, 7: hs[1].ID(), 9: hs[2].ID()}
	out, err := Remap(src, func(id uint32) (uint32, error) {
		n, ok := ids[id]
		if !ok {
			return 0, fmt.Errorf("no family %d", id)
		}
		return n, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wb := grocksdb.WriteBatchFrom(out)
	defer wb.Destroy()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	if err := db.Write(wo, wb); err != nil {
		t.Fatal(err)
	}
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	for _, c := range []struct {
		cf   int
		key  string
		want string
	}{{1, "x", "1"}, {2, "y", ""}, {0, "z", "3"}} {
		v, err := db.GetCF(ro, hs[c.cf], []byte(c.key))
		if err != nil {
			t.Fatal(err)
		}
		if string(v.Data()) != c.want {
			t.Errorf("family %d key %s = %q, want %q", c.cf, c.key, v.Data(), c.want)
		}
		v.Free()
	}
	if _, err := Remap(src, func(id uint32) (uint32, error) { return 0, errors.New("unmapped") }); err == nil {
		t.Fatal("Remap ignored the mapping error")
	}
}

func TestCorruptBatches(t *testing.T) {
	good := NewBuilder(5).
		Add(Record{Op: OpPut, CF: 3, Key: []byte("key"), Value: []byte("value")}).
		Add(Record{Op: OpDelete, Key: []byte("k")}).
		Bytes()
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short header", good[:11]},
		{"unknown tag", append(append([]byte{}, good[:HeaderLen]...), 0x7e)},
		{"count too high", func() []byte { b := append([]byte{}, good...); b[8] = 3; return b }()},
		{"slice past end", good[:len(good)-1]},
		{"bad varint", append(append([]byte{}, good[:HeaderLen]...), TagCFValue, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Records(tc.data); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
	// Every truncation of a good batch is rejected, never a panic.
	for n := 0; n < len(good); n++ {
		if _, err := Records(good[:n]); err == nil {
			t.Fatalf("truncation to %d bytes accepted", n)
		}
	}
}

func TestLastSeq(t *testing.T) {
	if got := (Header{Seq: 10, Count: 3}).LastSeq(); got != 12 {
		t.Fatalf("LastSeq = %d, want 12", got)
	}
}

// FuzzRecords: the WriteBatch decoder (restore replays and labels every
// batch of a segment through it) never panics, fails only with ErrCorrupt,
// and what it accepts survives Remap with the records unchanged.
func FuzzRecords(f *testing.F) {
	f.Add(NewBuilder(1).Add(Record{Op: OpMerge, CF: 2, Key: []byte("a"), Value: []byte("b")}).Bytes())
	f.Add(NewBuilder(7).Add(Record{Op: OpPut, CF: 0, Key: []byte("k"), Value: []byte("v")}).
		Add(Record{Op: OpDeleteRange, CF: 3, Key: []byte("a"), Value: []byte("z")}).Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := Records(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		same, err := Remap(data, func(id uint32) (uint32, error) { return id, nil })
		if err != nil {
			t.Fatalf("Remap fails on a batch Records accepts: %v", err)
		}
		again, err := Records(same)
		if err != nil || len(again) != len(recs) {
			t.Fatalf("remapped batch: %d records, %v; want %d", len(again), err, len(recs))
		}
		for i := range recs {
			a, b := recs[i], again[i]
			if a.Op != b.Op || a.CF != b.CF || !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) {
				t.Fatalf("record %d: %+v became %+v", i, a, b)
			}
		}
		_, _ = Remap(data, func(id uint32) (uint32, error) { return id + 1, nil })
	})
}
