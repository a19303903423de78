package dumpsource_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/dumpsource"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/stalwartfmt"
	"github.com/tailer-backup/tailer/uploader"
)

// TestBlobSources: both sources return a blob's file only when they hold a
// copy that hashes to its name; a missing or damaged copy is "no blob",
// not an error, so the dump leaves it out and counts it.
func TestBlobSources(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := blobfs.NewLayout(filepath.Join(dir, "blobs"), 2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := uploader.Open(ctx, "file://"+filepath.Join(dir, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rb, err := dumpsource.NewReplicaBlobs(ctx, r); err != nil || rb != nil {
		t.Fatalf("NewReplicaBlobs of an empty replica = %v, %v; want nil, nil", rb, err)
	}
	enc, err := blobship.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	type blob struct {
		name    string
		file    []byte
		stored  bool // written to the directory and the replica
		damaged bool // the stored copy has a flipped byte
	}
	blobs := []blob{
		{name: "raw", file: blobfs.Encode(bytes.Repeat([]byte("raw mail "), 300), false), stored: true},
		{name: "compressed", file: blobfs.Encode(bytes.Repeat([]byte("compressed mail "), 300), true), stored: true},
		{name: "lost", file: blobfs.Encode([]byte("lost mail"), false)},
		{name: "damaged", file: blobfs.Encode([]byte("damaged mail"), false), stored: true, damaged: true},
	}
	hashes := make([]blobfs.Hash, len(blobs))
	for i, b := range blobs {
		payload, _, err := blobfs.Decode(b.file)
		if err != nil {
			t.Fatal(err)
		}
		hashes[i] = blobfs.Sum(payload)
		if !b.stored {
			continue
		}
		file := bytes.Clone(b.file)
		if b.damaged {
			file[0] ^= 1
		}
		path := l.Path(hashes[i])
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		obj := enc.Encode(file)
		if err := r.Put(ctx, layout.BlobKey(hashes[i]), bytes.NewReader(obj), int64(len(obj))); err != nil {
			t.Fatal(err)
		}
	}
	rb, err := dumpsource.NewReplicaBlobs(ctx, r)
	if err != nil || rb == nil {
		t.Fatalf("NewReplicaBlobs = %v, %v", rb, err)
	}
	for _, src := range []struct {
		name string
		s    stalwartfmt.BlobSource
	}{{"dir", dumpsource.BlobDir{Layout: l}}, {"replica", rb}} {
		for i, b := range blobs {
			got, ok, err := src.s.Blob(ctx, hashes[i])
			if err != nil {
				t.Fatalf("%s %s: %v", src.name, b.name, err)
			}
			if want := b.stored && !b.damaged; ok != want || want && !bytes.Equal(got, b.file) {
				t.Errorf("%s %s: ok %v (%d bytes), want %v (%d bytes)", src.name, b.name, ok, len(got), want, len(b.file))
			}
		}
	}
}
