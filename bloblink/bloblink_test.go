package bloblink

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/store"
)

func hashOf(s string) blobfs.Hash { return blobfs.Sum([]byte(s)) }

func TestParseKey(t *testing.T) {
	h := hashOf("m")
	tests := []struct {
		name string
		key  []byte
		want Link
	}{
		{"commit", h[:], Link{Hash: h, Kind: Commit}},
		{"document", append(h[:], 0, 0, 0, 7, 0, 0, 0, 1, 2), Link{Hash: h, Kind: Document, Account: 7, Collection: 0, Document: 258}},
		{"id", append(h[:], 0, 0, 0, 0, 0, 0, 1, 0), Link{Hash: h, Kind: ID, ID: 256}},
		{"temporary", append(h[:], 0, 0, 0, 9, 0, 0, 0, 0, 0x6a, 0, 0, 0), Link{Hash: h, Kind: Temporary, Account: 9, Until: 0x6a000000}},
	}
	for _, tc := range tests {
		got, err := ParseKey(tc.key)
		if err != nil || got != tc.want {
			t.Errorf("%s: ParseKey = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
		if !bytes.Equal(got.Key(), tc.key) {
			t.Errorf("%s: Key() = %x, want %x", tc.name, got.Key(), tc.key)
		}
	}
	for _, n := range []int{0, 31, 33, 39, 42, 43, 45} {
		if _, err := ParseKey(make([]byte, n)); !errors.Is(err, ErrKey) {
			t.Errorf("ParseKey of %d bytes = %v, want ErrKey", n, err)
		}
	}
	if !bytes.Equal(DocumentKey(h, 7, 0, 258), tests[1].key) || !bytes.Equal(IDKey(h, 256), tests[2].key) ||
		!bytes.Equal(TemporaryKey(h, 9, 0x6a000000), tests[3].key) || !bytes.Equal(CommitKey(h), h[:]) {
		t.Fatal("key builders disagree with ParseKey")
	}
}

func TestRefs(t *testing.T) {
	// Hashes named so that their order is known.
	var a, b, c, d, e blobfs.Hash
	a[0], b[0], c[0], d[0], e[0] = 1, 2, 3, 4, 5
	const now = 1000
	keys := [][]byte{
		CommitKey(a), DocumentKey(a, 3, 0, 10), DocumentKey(a, 4, 0, 11), // delivered to two accounts
		CommitKey(b),                            // dead: awaiting the purge
		TemporaryKey(c, 5, now+60),              // being written: no commit yet
		CommitKey(d), TemporaryKey(d, 6, now-1), // expired upload
		CommitKey(e), IDKey(e, 77), append(e[:], 1, 2), // queued; a key of a newer shape
		{1, 2, 3}, // too short to name a blob
	}
	var col Collector
	for _, k := range keys {
		if err := col.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	refs := col.Refs()
	if len(refs) != 5 || col.Short != 1 {
		t.Fatalf("refs %d, short %d", len(refs), col.Short)
	}
	tests := []struct {
		ref      Ref
		required bool
		heldAt0  bool
		owner    string
	}{
		{refs[0], true, true, "account 3 (collection 0, document 10)"},
		{refs[1], false, false, "no link"},
		{refs[2], false, true, "account 5 (temporary link)"},
		{refs[3], false, true, "account 6 (temporary link)"},
		{refs[4], true, true, "queued message 77"},
	}
	for i, tc := range tests {
		if got := tc.ref.Required(now); got != tc.required {
			t.Errorf("ref %d: Required = %v, want %v (%+v)", i, got, tc.required, tc.ref)
		}
		if got := tc.ref.Held(0); got != tc.heldAt0 {
			t.Errorf("ref %d: Held(0) = %v, want %v", i, got, tc.heldAt0)
		}
		if got := tc.ref.OwnerString(); got != tc.owner {
			t.Errorf("ref %d: owner %q, want %q", i, got, tc.owner)
		}
	}
	if refs[0].Documents != 2 || refs[4].Others != 1 || refs[4].IDs != 1 {
		t.Fatalf("counts: %+v %+v", refs[0], refs[4])
	}
	if err := col.Add(CommitKey(a)); err == nil {
		t.Fatal("a key out of order was accepted")
	}
}

// TestRead reads k from a RocksDB store as of a snapshot: links written
// after it are not seen.
func TestRead(t *testing.T) {
	st, err := store.OpenWritable(t.TempDir(), []string{"k"}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	h1, h2 := hashOf("one"), hashOf("two")
	for _, k := range [][]byte{CommitKey(h1), DocumentKey(h1, 1, 0, 1)} {
		if err := st.DB.PutCF(wo, st.Handle("k"), k, nil); err != nil {
			t.Fatal(err)
		}
	}
	snap := st.DB.NewSnapshot()
	defer st.DB.ReleaseSnapshot(snap)
	for _, k := range [][]byte{CommitKey(h2), DocumentKey(h2, 2, 0, 1)} {
		if err := st.DB.PutCF(wo, st.Handle("k"), k, nil); err != nil {
			t.Fatal(err)
		}
	}
	refs, short, err := Read(context.Background(), st, snap)
	if err != nil || short != 0 || len(refs) != 1 || refs[0].Hash != h1 || !refs[0].Required(0) {
		t.Fatalf("Read at the snapshot = %+v, %d, %v", refs, short, err)
	}
	refs, _, err = Read(context.Background(), st, nil)
	if err != nil || len(refs) != 2 {
		t.Fatalf("Read now = %+v, %v", refs, err)
	}
	none, err := store.OpenWritable(t.TempDir(), []string{"t"}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	if refs, _, err := Read(context.Background(), none, nil); err != nil || refs != nil {
		t.Fatalf("Read of a store without k = %v, %v", refs, err)
	}
}

// TestReadHashes reads the links of chosen blobs only.
func TestReadHashes(t *testing.T) {
	st, err := store.OpenWritable(t.TempDir(), []string{"k"}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	a, b, c := hashOf("a"), hashOf("b"), hashOf("c")
	for _, k := range [][]byte{CommitKey(a), DocumentKey(a, 1, 0, 1), CommitKey(b), TemporaryKey(b, 2, 99), CommitKey(c), DocumentKey(c, 3, 0, 3)} {
		if err := st.DB.PutCF(wo, st.Handle("k"), k, nil); err != nil {
			t.Fatal(err)
		}
	}
	gone := hashOf("purged")
	refs, err := ReadHashes(context.Background(), st, []blobfs.Hash{c, gone, b, c})
	if err != nil || len(refs) != 2 {
		t.Fatalf("ReadHashes = %+v, %v", refs, err)
	}
	byHash := map[blobfs.Hash]Ref{refs[0].Hash: refs[0], refs[1].Hash: refs[1]}
	if r := byHash[c]; !r.Committed || r.Documents != 1 || r.Owner != 3 {
		t.Fatalf("c: %+v", r)
	}
	if r := byHash[b]; !r.Committed || r.Temporaries != 1 || r.LatestUntil != 99 {
		t.Fatalf("b: %+v", r)
	}
	if _, ok := byHash[a]; ok {
		t.Fatal("a blob not asked for was read")
	}
}

// TestLookup reads one blob's links: its own keys only, not those of a
// neighbouring hash.
func TestLookup(t *testing.T) {
	st, err := store.OpenWritable(t.TempDir(), []string{"k"}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	var a, b, c blobfs.Hash
	a[0], b[0], c[0] = 1, 2, 3
	for _, k := range [][]byte{CommitKey(a), DocumentKey(a, 9, 0, 4), TemporaryKey(b, 5, 100), CommitKey(c), IDKey(c, 8)} {
		if err := st.DB.PutCF(wo, st.Handle("k"), k, nil); err != nil {
			t.Fatal(err)
		}
	}
	var absent blobfs.Hash
	absent[0] = 4
	tests := []struct {
		h     blobfs.Hash
		ok    bool
		owner string
	}{
		{a, true, "account 9 (collection 0, document 4)"},
		{b, true, "account 5 (temporary link)"},
		{c, true, "queued message 8"},
		{absent, false, ""},
	}
	for _, tc := range tests {
		r, ok, err := Lookup(st, nil, tc.h)
		if err != nil || ok != tc.ok || (ok && (r.Hash != tc.h || r.OwnerString() != tc.owner)) {
			t.Errorf("Lookup(%x) = %+v, %v, %v; want ok %v owner %q", tc.h[:1], r, ok, err, tc.ok, tc.owner)
		}
	}
}
