package changelog

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// hexBytes parses space-separated hex bytes written by hand in the tests.
func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	var out []byte
	for _, f := range strings.Fields(s) {
		var b byte
		for _, c := range f {
			var d byte
			switch {
			case c >= '0' && c <= '9':
				d = byte(c - '0')
			case c >= 'a' && c <= 'f':
				d = byte(c-'a') + 10
			default:
				t.Fatalf("bad hex %q", f)
			}
			b = b<<4 | d
		}
		if len(f) != 2 {
			t.Fatalf("bad hex byte %q", f)
		}
		out = append(out, b)
	}
	return out
}

func TestKeyVectors(t *testing.T) {
	tests := []struct {
		key  Key
		want string
	}{
		// account 17, Email, change 5120 (0x1400).
		{Key{17, Email, 5120}, "00 00 00 11 00 00 00 00 00 00 00 14 00"},
		{Key{0x01020304, VanishedEmail, 0x0102030405060708}, "01 02 03 04 fb 01 02 03 04 05 06 07 08"},
		{Key{0, Thread, 0}, "00 00 00 00 01 00 00 00 00 00 00 00 00"},
		{Key{0xffffffff, ShareNotification, 1}, "ff ff ff ff 09 00 00 00 00 00 00 00 01"},
		{Key{5, Collection(200), 1 << 63}, "00 00 00 05 c8 80 00 00 00 00 00 00 00"},
	}
	for _, tc := range tests {
		want := hexBytes(t, tc.want)
		if got := EncodeKey(tc.key); !bytes.Equal(got, want) {
			t.Errorf("EncodeKey(%+v) = % x, want % x", tc.key, got, want)
		}
		got, err := DecodeKey(want)
		if err != nil || got != tc.key {
			t.Errorf("DecodeKey(% x) = %+v, %v, want %+v", want, got, err, tc.key)
		}
	}
}

func TestDecodeKeyLength(t *testing.T) {
	good := EncodeKey(Key{17, Email, 5120})
	for _, b := range [][]byte{nil, {}, good[:12], append(bytes.Clone(good), 0x00), append(bytes.Clone(good), 0xde, 0xad)} {
		if _, err := DecodeKey(b); err == nil || !strings.Contains(err.Error(), "want 13") {
			t.Errorf("DecodeKey(% x) err = %v, want a length error", b, err)
		}
	}
}

func TestChangeSetVectors(t *testing.T) {
	tests := []struct {
		name string
		cs   ChangeSet
		want string
	}{
		{"empty", ChangeSet{}, "00 00 00 00 00 00 00"},
		{
			// One container update (mailbox 3), one email inserted in thread 7
			// with document id 42 ((7<<32)|42), one email 300 deleted.
			"mixed",
			ChangeSet{ContainerUpdates: []uint64{3}, ItemInserts: []uint64{7<<32 | 42}, ItemDeletes: []uint64{300}},
			"00 01 00 00 01 00 01  03  aa 80 80 80 70  ac 02",
		},
		{
			"every list",
			ChangeSet{
				ContainerInserts: []uint64{1}, ContainerUpdates: []uint64{2, 127}, ContainerPropertyChanges: []uint64{128},
				ContainerDeletes: []uint64{4}, ItemInserts: []uint64{5}, ItemUpdates: []uint64{0}, ItemDeletes: []uint64{1<<64 - 1},
			},
			"01 02 01 01 01 01 01  01  02 7f  80 01  04  05  00  ff ff ff ff ff ff ff ff ff 01",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := hexBytes(t, tc.want)
			if got := EncodeChangeSet(tc.cs); !bytes.Equal(got, want) {
				t.Fatalf("EncodeChangeSet = % x, want % x", got, want)
			}
			e, err := DecodeEntry(EncodeKey(Key{17, Email, 5120}), want)
			if err != nil {
				t.Fatal(err)
			}
			if e.Changes == nil || e.Truncation || e.Opaque || e.Vanished != nil {
				t.Fatalf("entry = %+v, want a change set only", e)
			}
			if !equalChangeSets(*e.Changes, tc.cs) {
				t.Fatalf("decoded %+v, want %+v", *e.Changes, tc.cs)
			}
		})
	}
}

func equalChangeSets(a, b ChangeSet) bool {
	la, lb := a.lists(), b.lists()
	for i := range la {
		if !slices.Equal(*la[i], *lb[i]) {
			return false
		}
	}
	return true
}

func TestChangeSetRoundTrip(t *testing.T) {
	for _, c := range []Collection{Email, Thread, Calendar, AddressBook, FileNode, Identity, EmailSubmission, SieveScript, CalendarEventNotification} {
		cs := ChangeSet{
			ContainerInserts: []uint64{uint64(c)}, ContainerPropertyChanges: []uint64{1 << 40},
			ItemInserts: []uint64{1, 2, 3}, ItemUpdates: []uint64{1<<32 | 9}, ItemDeletes: []uint64{1<<64 - 1, 0},
		}
		k := Key{Account: uint32(c) + 1, Collection: c, ChangeID: 99}
		e, err := DecodeEntry(EncodeKey(k), EncodeChangeSet(cs))
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if e.Key != k || e.Changes == nil || !equalChangeSets(*e.Changes, cs) {
			t.Fatalf("%v: round trip = %+v", c, e)
		}
		if e.Changes.Inserts() != 4 || e.Changes.Updates() != 2 || e.Changes.Deletes() != 2 {
			t.Fatalf("%v: counts %d/%d/%d, want 4/2/2", c, e.Changes.Inserts(), e.Changes.Updates(), e.Changes.Deletes())
		}
	}
}

func TestDecodeEntryKinds(t *testing.T) {
	tests := []struct {
		name     string
		coll     Collection
		value    string
		trunc    bool
		vanished []uint64
		opaque   bool
	}{
		{"email truncation marker", Email, "", true, nil, false},
		{"vanished truncation marker", VanishedEmail, "", true, nil, false},
		{"share notification truncation marker", ShareNotification, "", true, nil, false},
		{"vanished email", VanishedEmail, "01 80 01 80 80 01", false, []uint64{1, 128, 16384}, false},
		{"vanished file node", VanishedFileNode, "aa 80 80 80 70", false, []uint64{7<<32 | 42}, false},
		{"share notification", ShareNotification, "00 01 02 ff ff ff", false, nil, true},
		{"unknown collection", Collection(42), "80 80 80", false, nil, true},
		{"unknown collection 255", Collection(255), "00", false, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := Key{Account: 3, Collection: tc.coll, ChangeID: 12}
			e, err := DecodeEntry(EncodeKey(k), hexBytes(t, tc.value))
			if err != nil {
				t.Fatal(err)
			}
			if e.Key != k || e.Truncation != tc.trunc || e.Opaque != tc.opaque || e.Changes != nil || !slices.Equal(e.Vanished, tc.vanished) {
				t.Fatalf("entry = %+v", e)
			}
		})
	}
	ids := []uint64{0, 1, 1 << 35, 1<<64 - 1}
	e, err := DecodeEntry(EncodeKey(Key{1, VanishedCalendar, 2}), EncodeVanished(ids))
	if err != nil || !slices.Equal(e.Vanished, ids) {
		t.Fatalf("vanished round trip = %v, %v", e.Vanished, err)
	}
}

func TestDecodeEntryMalformed(t *testing.T) {
	good := EncodeKey(Key{17, Email, 5120})
	tests := []struct {
		name  string
		key   []byte
		coll  Collection
		value string
		want  string // in the error
	}{
		{"key too short", good[:12], Email, "00 00 00 00 00 00 00", "12 bytes"},
		{"key with trailing garbage", append(bytes.Clone(good), 0xee), Email, "00 00 00 00 00 00 00", "14 bytes"},
		{"empty key", []byte{}, Email, "", "0 bytes"},
		{"counts cut short", nil, Email, "00 00 00", "ends before the count of container deletes"},
		{"truncated count", nil, Email, "80", "count of container inserts: truncated"},
		{"truncated id", nil, Thread, "00 00 00 00 01 00 00 80", "id 0 of item inserts: truncated"},
		{"count beyond value", nil, Email, "00 00 00 00 05 00 00 01", "count of item inserts is 5"},
		{"huge count", nil, Email, "ff ff ff ff 0f 00 00 00 00 00 00", "count of container inserts is 4294967295"},
		{"counts add up beyond value", nil, Calendar, "00 00 00 00 01 01 00 07", "add up to 2 ids"},
		{"trailing bytes", nil, Email, "00 00 00 00 00 00 00 05", "1 trailing bytes"},
		{"overlong varint", nil, Email, "ff ff ff ff ff ff ff ff ff ff 01 00 00 00 00 00 00", "overlong"},
		{"vanished truncated", nil, VanishedEmail, "01 80", "vanished item 1: truncated"},
		{"vanished overlong", nil, VanishedAddressBook, "ff ff ff ff ff ff ff ff ff 7f", "vanished item 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = EncodeKey(Key{17, tc.coll, 5120})
			}
			e, err := DecodeEntry(key, hexBytes(t, tc.value))
			if err == nil {
				t.Fatalf("accepted: %+v", e)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if tc.key == nil && !strings.Contains(err.Error(), "account 17") {
				t.Fatalf("err = %v does not name the entry", err)
			}
			if e.Changes != nil || e.Vanished != nil {
				t.Fatalf("malformed entry returned data: %+v", e)
			}
		})
	}
}

func TestEntryString(t *testing.T) {
	k := Key{17, Email, 5120}
	tests := []struct {
		e    Entry
		want string
	}{
		{Entry{Key: k, Truncation: true}, "account 17 email change 5120: truncation marker"},
		{Entry{Key: k, Changes: &ChangeSet{ItemInserts: []uint64{1}, ContainerPropertyChanges: []uint64{2}}}, "account 17 email change 5120: 1 inserts, 1 updates, 0 deletes"},
		{Entry{Key: Key{1, VanishedEmail, 2}, Vanished: []uint64{1, 2}}, "account 1 vanished-email change 2: 2 vanished items"},
		{Entry{Key: Key{1, Collection(99), 2}, Opaque: true}, "account 1 collection(99) change 2: opaque value"},
	}
	for _, tc := range tests {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestCollectionNames(t *testing.T) {
	tests := []struct {
		c    Collection
		name string
	}{
		{Email, "email"}, {Thread, "thread"}, {Calendar, "calendar"}, {AddressBook, "address-book"},
		{FileNode, "file-node"}, {Identity, "identity"}, {EmailSubmission, "email-submission"},
		{SieveScript, "sieve-script"}, {CalendarEventNotification, "calendar-event-notification"},
		{ShareNotification, "share-notification"}, {VanishedEmail, "vanished-email"},
		{VanishedCalendar, "vanished-calendar"}, {VanishedAddressBook, "vanished-address-book"},
		{VanishedFileNode, "vanished-file-node"}, {Collection(10), "collection(10)"}, {Collection(255), "collection(255)"},
	}
	for _, tc := range tests {
		if got := tc.c.String(); got != tc.name {
			t.Errorf("Collection(%d).String() = %q, want %q", uint8(tc.c), got, tc.name)
		}
		for _, in := range []string{tc.name, strings.ToUpper(tc.name), strings.ReplaceAll(tc.name, "-", ""), strings.ReplaceAll(tc.name, "-", "_")} {
			if got, err := ParseCollection(in); err != nil || got != tc.c {
				t.Errorf("ParseCollection(%q) = %v, %v, want %v", in, got, err, tc.c)
			}
		}
	}
	for in, want := range map[string]Collection{"0": Email, "251": VanishedEmail, " 9 ": ShareNotification, "AddressBook": AddressBook, "VanishedFileNode": VanishedFileNode, "Collection(7)": SieveScript} {
		if got, err := ParseCollection(in); err != nil || got != want {
			t.Errorf("ParseCollection(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "256", "-1", "mail", "collection(300)", "collection()", "--"} {
		if _, err := ParseCollection(in); err == nil {
			t.Errorf("ParseCollection(%q) accepted", in)
		}
	}
	for c := 0; c < 256; c++ {
		col := Collection(c)
		if got, err := ParseCollection(col.String()); err != nil || got != col {
			t.Fatalf("ParseCollection(%q) = %v, %v", col.String(), got, err)
		}
		if col.Known() != (c <= 9 || (c >= 251 && c <= 254)) {
			t.Fatalf("%v.Known() = %v", col, col.Known())
		}
	}
}
