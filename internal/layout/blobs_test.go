package layout

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
)

func TestBlobKeys(t *testing.T) {
	h := blobfs.Sum([]byte("mail"))
	key := BlobKey(h)
	if key != "blobs/"+h.Name() {
		t.Fatalf("BlobKey = %s", key)
	}
	if got, ok := ParseBlobKey(key); !ok || got != h {
		t.Fatalf("ParseBlobKey(%s) = %x, %v", key, got, ok)
	}
	for _, k := range []string{
		"blobs/", "blobs/" + h.Name() + "/", "blobs/" + strings.ToUpper(h.Name()), "blobs/../" + h.Name(),
		"blobs/x/" + h.Name(), "Blobs/" + h.Name(), h.Name(), "blobs/" + h.Name()[:51], "generations/g/blobs/" + h.Name(),
	} {
		if _, ok := ParseBlobKey(k); ok {
			t.Errorf("ParseBlobKey(%q) accepted", k)
		}
	}
	h2 := blobfs.Sum([]byte("other"))
	blobs, unknown := ParseBlobs(objs(BlobKey(h2), "generations/g/generation.json", BlobKey(h), "blobs/junk", "blobs/"+h.Name()+".tmp"))
	var keys []string
	for _, b := range blobs {
		keys = append(keys, b.Key)
		if b.Key != BlobKey(b.Hash) {
			t.Errorf("blob %s has hash %x", b.Key, b.Hash)
		}
	}
	want := []string{BlobKey(h), BlobKey(h2)}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("blobs %v, want %v", keys, want)
	}
	if !slices.Equal(unknown, []string{"blobs/junk", "blobs/" + h.Name() + ".tmp"}) {
		t.Fatalf("unknown = %v", unknown)
	}
	// Generations are unaffected by blob objects in the same LIST.
	gen := NewGenerationID(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), "")
	gens, _ := Parse(objs(MetaKey(gen), BlobKey(h)))
	if len(gens) != 1 || gens[0].ID != gen {
		t.Fatalf("generations %+v", gens)
	}
}

func TestBlobManifestKeys(t *testing.T) {
	gen := NewGenerationID(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), "")
	key := BlobManifestKey(gen, 0x2a)
	if want := "generations/" + gen + "/exports/000000000000002a.blobs"; key != want {
		t.Fatalf("key %s, want %s", key, want)
	}
	gens, unknown := Parse(objs(MetaKey(gen), ExportKey(gen, 0x2a), key,
		"generations/"+gen+"/exports/2a.blobs", "generations/"+gen+"/exports/000000000000002A.blobs"))
	if len(gens) != 1 || len(gens[0].BlobManifests) != 1 || gens[0].BlobManifests[0].Seq != 0x2a || gens[0].BlobManifests[0].Key != key {
		t.Fatalf("generations %+v", gens)
	}
	if len(gens[0].Exports) != 1 {
		t.Fatalf("a manifest was taken for an export: %+v", gens[0].Exports)
	}
	if len(unknown) != 2 {
		t.Fatalf("uncanonical manifest keys accepted: unknown = %v", unknown)
	}
}
