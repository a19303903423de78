package changelog

import (
	"bytes"
	"slices"
	"testing"
)

func FuzzDecodeEntry(f *testing.F) {
	key := EncodeKey(Key{17, Email, 5120})
	f.Add(key, EncodeChangeSet(ChangeSet{ContainerUpdates: []uint64{3}, ItemInserts: []uint64{7<<32 | 42}, ItemDeletes: []uint64{300}}))
	f.Add(key, []byte{})
	f.Add(key, []byte{0, 0, 0, 0, 5, 0, 0, 1})
	f.Add(EncodeKey(Key{1, VanishedEmail, 2}), EncodeVanished([]uint64{1, 128, 1 << 40}))
	f.Add(EncodeKey(Key{1, ShareNotification, 2}), []byte{1, 2, 3})
	f.Add(EncodeKey(Key{1, Collection(100), 2}), []byte{0xff})
	f.Add(append(key, 0), []byte{0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		e, err := DecodeEntry(key, value)
		if err != nil {
			if e.Changes != nil || e.Vanished != nil || e.Truncation || e.Opaque {
				t.Fatalf("error %v with data %+v", err, e)
			}
			return
		}
		if !bytes.Equal(EncodeKey(e.Key), key) {
			t.Fatalf("key % x decoded to %+v", key, e.Key)
		}
		kinds := 0
		for _, b := range []bool{e.Truncation, e.Changes != nil, e.Vanished != nil, e.Opaque} {
			if b {
				kinds++
			}
		}
		if kinds != 1 {
			t.Fatalf("entry %+v is not exactly one kind", e)
		}
		switch {
		case e.Changes != nil:
			// Allocation is bounded: never more ids than value bytes.
			n := e.Changes.Inserts() + e.Changes.Updates() + e.Changes.Deletes()
			if n > len(value) {
				t.Fatalf("%d ids from %d bytes", n, len(value))
			}
			// Re-encoding is canonical LEB128, so compare decoded forms.
			again, err := DecodeEntry(key, EncodeChangeSet(*e.Changes))
			if err != nil || again.Changes == nil || !equalChangeSets(*again.Changes, *e.Changes) {
				t.Fatalf("re-encoded change set decodes to %+v, %v", again, err)
			}
		case e.Vanished != nil:
			if len(e.Vanished) > len(value) {
				t.Fatalf("%d vanished ids from %d bytes", len(e.Vanished), len(value))
			}
			again, err := DecodeEntry(key, EncodeVanished(e.Vanished))
			if err != nil || !slices.Equal(again.Vanished, e.Vanished) {
				t.Fatalf("re-encoded vanished list decodes to %+v, %v", again, err)
			}
		}
	})
}
