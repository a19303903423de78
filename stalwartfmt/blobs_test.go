package stalwartfmt_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/dumpsource"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/stalwartfmt"
	"github.com/tailer-backup/tailer/uploader"
)

// TestDumpBlobSources: blobs linked in k but kept in a filesystem blob
// store are written into the dump from the blob source given, as Stalwart's own export
// reads them through its blob store, from a live blob directory and from
// a replica's blobs/; a blob the source lacks (or holds damaged) is left
// out and counted, as without a source.
func TestDumpBlobSources(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	buildSmallStore(t, db, []byte{0, 0, 0, 6})
	payloads := [][]byte{text(3000, "raw mail"), text(5000, "compressed mail"), []byte("lost mail"), text(100, "damaged in the bucket")}
	var hashes []blobfs.Hash
	names, err := store.ListFamilies(db)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenWritable(db, names, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	wo := grocksdb.NewDefaultWriteOptions()
	for i, p := range payloads {
		h := blobfs.Sum(p)
		hashes = append(hashes, h)
		for _, k := range [][]byte{bloblink.CommitKey(h), bloblink.DocumentKey(h, 1, 0, uint32(i))} {
			if err := st.DB.PutCF(wo, st.Handle("k"), k, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	wo.Destroy()
	st.Close()

	l, _ := blobfs.NewLayout(filepath.Join(dir, "blobs"), 2)
	r, err := uploader.Open(ctx, "file://"+filepath.Join(dir, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := blobship.NewEncoder()
	for i, p := range payloads {
		if i == 2 {
			continue // lost everywhere
		}
		file := blobfs.Encode(p, i == 1)
		path := l.Path(hashes[i])
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			file[0] ^= 1 // the damaged copy: on disk and in the bucket
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
	ro, err := store.OpenReadOnly(db)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	export := func(name string, src stalwartfmt.BlobSource) (stalwartfmt.Summary, map[string][]byte) {
		out := filepath.Join(dir, name)
		sum, err := stalwartfmt.WriteDump(ctx, ro, ro.DB.GetLatestSequenceNumber(), out, stalwartfmt.Options{Log: testLog(t), Blobs: src})
		if err != nil {
			t.Fatal(err)
		}
		dump, err := readDump(out)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]byte{}
		for _, rec := range dump['t'].Records {
			got[string(rec.Key)] = rec.Value
		}
		return sum, got
	}
	none, _ := export("none", nil)
	for name, src := range map[string]stalwartfmt.BlobSource{"dir": dumpsource.BlobDir{Layout: l}, "replica": rb} {
		sum, got := export(name, src)
		if sum.SourcedBlobs != 2 || sum.MissingBlobs != none.MissingBlobs-2 {
			t.Errorf("%s: %d blobs from the source, %d missing (without a source %d missing)", name, sum.SourcedBlobs, sum.MissingBlobs, none.MissingBlobs)
		}
		for i, p := range payloads {
			v, ok := got[string(hashes[i][:])]
			if want := i < 2; ok != want || want && !bytes.Equal(v, p) {
				t.Errorf("%s: blob %d exported %v (%d bytes), want %v", name, i, ok, len(v), want)
			}
		}
	}
}

// TestDumpFromReplicaBlobs: restore --format stalwart of a replica of a
// filesystem blob store writes the point's blobs from blobs/ into the dump.
func TestDumpFromReplicaBlobs(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 10, PerSegment: 4, Blobs: true})
	seq := rep.Batches[6].Last
	out := filepath.Join(t.TempDir(), "out")
	_, sum, err := dumpsource.FromReplica(context.Background(), restore.Options{Replica: rep.R, Target: restore.Target{Seq: seq, HasSeq: true}}, out, stalwartfmt.Options{Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	dump, err := readDump(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[blobfs.Hash][]byte{}
	for _, rec := range dump['t'].Records {
		got[blobfs.Hash(rec.Key)] = rec.Value
	}
	want := rep.BlobsAt[seq]
	if sum.SourcedBlobs != uint64(len(want)) || sum.MissingBlobs != 0 || len(got) != len(want) {
		t.Fatalf("%d blobs from the replica, %d missing, %d exported; want %d", sum.SourcedBlobs, sum.MissingBlobs, len(got), len(want))
	}
	for _, h := range want {
		payload, _, err := blobfs.Decode(rep.BlobFiles[h])
		if err != nil || !bytes.Equal(got[h], payload) {
			t.Fatalf("blob %s exported as %d bytes, want its %d-byte payload (%v)", h, len(got[h]), len(payload), err)
		}
	}
}
