package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/uploader"
)

var blobSpec = replicatest.Spec{Tx: 20, ExportsAfter: []int{0, 10}, PerSegment: 4, Blobs: true}

// blobFiles lists the blob files under dir by hash (tailer's temporary
// files are reported as such, so a test sees one left behind).
func blobFiles(t *testing.T, l blobfs.Layout) map[blobfs.Hash][]byte {
	t.Helper()
	return blobFilesWhile(t, l, false)
}

// blobFilesWhile is blobFiles; writing says tailer may be writing there
// right now, so its temporary files are no error.
func blobFilesWhile(t *testing.T, l blobfs.Layout, writing bool) map[blobfs.Hash][]byte {
	t.Helper()
	out := map[blobfs.Hash][]byte{}
	err := l.Scan(context.Background(), func(e blobfs.Entry) error {
		b, err := os.ReadFile(e.Path)
		if err != nil {
			return err
		}
		if l.Path(e.Hash) != e.Path {
			return fmt.Errorf("%s is not where Stalwart keeps blob %s (%s)", e.Path, e.Hash, l.Path(e.Hash))
		}
		out[e.Hash] = b
		return nil
	}, blobfs.ScanOptions{Foreign: func(f blobfs.Foreign) {
		if !writing || !strings.HasPrefix(filepath.Base(f.Path), ".tailer-tmp-") {
			t.Errorf("not a blob file: %s (%s)", f.Path, f.Why)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkBlobs proves dir holds exactly the blobs the source referenced at
// seq, byte for byte.
func checkBlobs(t *testing.T, rep *replicatest.Replica, l blobfs.Layout, seq uint64) {
	t.Helper()
	got := blobFiles(t, l)
	want, ok := rep.BlobsAt[seq]
	if !ok {
		t.Fatalf("no blob set recorded at %d", seq)
	}
	for _, h := range want {
		if !bytes.Equal(got[h], rep.BlobFiles[h]) {
			t.Errorf("at %d: blob %s restored as %d bytes, want the %d Stalwart wrote", seq, h, len(got[h]), len(rep.BlobFiles[h]))
		}
		delete(got, h)
	}
	for h := range got {
		t.Errorf("at %d: blob %s restored but not referenced there", seq, h)
	}
}

// TestRestoreBlobsAtPoints restores the store and its blobs at several
// points, the export alone, mid-chain and the newest state, and checks
// each blob directory is exactly the primary's blob set at that point,
// including blobs purged from the primary later (the bucket keeps them).
func TestRestoreBlobsAtPoints(t *testing.T) {
	rep := replicatest.Build(t, blobSpec)
	// Transaction 3 references the blob of transaction 2; transaction 4
	// purges it, so only the bucket still has it.
	purgedLater := blobfs.Sum(replicatest.BlobPayload(2))
	at3 := rep.Batches[2].Last
	if !slices.Contains(rep.BlobsAt[at3], purgedLater) || slices.Contains(rep.BlobsAt[rep.Batches[3].Last], purgedLater) {
		t.Fatal("the replica does not purge the blob of transaction 2 at transaction 4")
	}
	newest := rep.Batches[len(rep.Batches)-1].Last
	if len(rep.BlobsAt[rep.Exports[0].Seq]) != 0 || len(rep.BlobsAt[rep.Exports[1].Seq]) == 0 {
		t.Fatal("the base export should hold no blob, the second some")
	}
	for _, seq := range []uint64{rep.Exports[0].Seq, at3, rep.Exports[1].Seq, rep.Batches[13].Last, newest} {
		t.Run(fmt.Sprint(seq), func(t *testing.T) {
			dir := t.TempDir()
			l, _ := blobfs.NewLayout(filepath.Join(dir, "blobs"), 2)
			res, err := Run(context.Background(), Options{Replica: rep.R, To: filepath.Join(dir, "db"),
				Target: Target{Seq: seq, HasSeq: true}, Blobs: &BlobOptions{Dir: l.Root, Depth: 2, Workers: 3}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Blobs == nil || res.Blobs.Report.Err() != nil || res.Blobs.Referenced < len(rep.BlobsAt[seq]) {
				t.Fatalf("blob result %+v", res.Blobs)
			}
			if seq > rep.Exports[0].Seq && res.Blobs.Now != uint64(res.CapturedUnixMs/1000) {
				t.Fatalf("temporary links judged at %d, the point was captured at %d ms", res.Blobs.Now, res.CapturedUnixMs)
			}
			checkBlobs(t, rep, l, seq)
			if st, err := os.Stat(l.Root); err != nil || st.Mode().Perm() != 0o700 {
				t.Fatalf("blob directory mode: %v %v", st.Mode(), err)
			}
		})
	}
}

// TestRestoreBlobsMissing: a required blob the bucket lacks does not
// fail Run; the report names it and its owner, the store and the other
// blobs stay.
func TestRestoreBlobsMissing(t *testing.T) {
	rep := replicatest.Build(t, blobSpec)
	seq := rep.Batches[len(rep.Batches)-1].Last
	lost := rep.BlobsAt[seq][0]
	rep.Delete(t, layout.BlobKey(lost))
	dir := t.TempDir()
	l, _ := blobfs.NewLayout(filepath.Join(dir, "blobs"), 2)
	res, err := Run(context.Background(), Options{Replica: rep.R, To: filepath.Join(dir, "db"), Blobs: &BlobOptions{Dir: l.Root, Depth: 2}})
	if err != nil {
		t.Fatal(err)
	}
	miss := res.Blobs.Report.Missing
	if len(miss) != 1 || miss[0].Hash != lost || !strings.HasPrefix(miss[0].Owner, "account 7 (collection 0, document ") || miss[0].Why != "not in the replica" {
		t.Fatalf("missing %+v", miss)
	}
	if !errors.Is(res.Blobs.Report.Err(), blobship.ErrMissingBlobs) {
		t.Fatal(res.Blobs.Report.Err())
	}
	if got := blobFiles(t, l); len(got) != len(rep.BlobsAt[seq])-1 || got[lost] != nil {
		t.Fatalf("%d blobs restored, want %d", len(got), len(rep.BlobsAt[seq])-1)
	}
	if _, err := os.Stat(filepath.Join(dir, "db", "CURRENT")); err != nil {
		t.Fatal("the store was not kept:", err)
	}
}

// TestRestoreBlobsHostile: an object under a blob's key that is not that
// blob (another blob's valid object, garbage, a flipped byte) is never
// written; it is reported as missing.
func TestRestoreBlobsHostile(t *testing.T) {
	rep := replicatest.Build(t, blobSpec)
	seq := rep.Batches[len(rep.Batches)-1].Last
	hs := rep.BlobsAt[seq]
	other := rep.Read(t, layout.BlobKey(hs[1]))
	rep.Replace(t, layout.BlobKey(hs[0]), other)                     // valid object, wrong content
	rep.Replace(t, layout.BlobKey(hs[2]), []byte("TBLB not at all")) // garbage
	rep.Flip(t, layout.BlobKey(hs[3]), -3)                           // damaged body
	dir := t.TempDir()
	l, _ := blobfs.NewLayout(filepath.Join(dir, "blobs"), 2)
	res, err := Run(context.Background(), Options{Replica: rep.R, To: filepath.Join(dir, "db"), Blobs: &BlobOptions{Dir: l.Root, Depth: 2}})
	if err != nil {
		t.Fatal(err)
	}
	miss := res.Blobs.Report.Missing
	var names []blobfs.Hash
	for _, m := range miss {
		names = append(names, m.Hash)
	}
	for _, h := range hs[:1] {
		if !slices.Contains(names, h) {
			t.Errorf("hostile object of %s not reported: %+v", h, miss)
		}
	}
	if len(miss) != 3 {
		t.Fatalf("missing %+v", miss)
	}
	got := blobFiles(t, l)
	for _, h := range []blobfs.Hash{hs[0], hs[2], hs[3]} {
		if got[h] != nil {
			t.Errorf("a hostile object was written as %s", h)
		}
	}
	if !bytes.Equal(got[hs[1]], rep.BlobFiles[hs[1]]) {
		t.Error("the good blob was not restored")
	}
}

// failingBlobs fails every blob download with a replica error.
type failingBlobs struct{ uploader.Replica }

func (f failingBlobs) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if strings.HasPrefix(key, layout.BlobsRoot) {
		return nil, errors.New("connection reset by peer")
	}
	return f.Replica.Get(ctx, key)
}

// TestRestoreBlobsRefusals: a blob directory in the way is refused before
// anything is written; a replica failing mid-way fails the restore and
// removes both directories it created, never one it did not.
func TestRestoreBlobsRefusals(t *testing.T) {
	rep := replicatest.Build(t, blobSpec)
	dir := t.TempDir()
	to := filepath.Join(dir, "db")
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "operator"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, blobs := range map[string]string{"not empty": full, "inside the store": filepath.Join(to, "blobs"), "the store": to} {
		_, err := Run(context.Background(), Options{Replica: rep.R, To: to, Blobs: &BlobOptions{Dir: blobs, Depth: 2}})
		if !errors.Is(err, ErrBlobDir) {
			t.Errorf("%s: %v, want ErrBlobDir", name, err)
		}
		if _, err := os.Stat(to); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the store was written before the blob directory was checked", name)
		}
	}
	if b, err := os.ReadFile(filepath.Join(full, "operator")); err != nil || string(b) != "x" {
		t.Fatal("the operator's file was touched")
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, blobs := range []string{filepath.Join(dir, "new"), empty} {
		_, err := Run(context.Background(), Options{Replica: failingBlobs{rep.R}, To: to, Blobs: &BlobOptions{Dir: blobs, Depth: 2}})
		if err == nil || !strings.Contains(err.Error(), "connection reset") {
			t.Fatalf("restore through a failing replica: %v", err)
		}
		if _, err := os.Stat(to); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a failed restore left its store")
		}
		entries, err := os.ReadDir(blobs)
		switch {
		case blobs == empty && (err != nil || len(entries) != 0):
			t.Fatalf("the existing empty blob directory: %v, %d entries (it must stay, emptied)", err, len(entries))
		case blobs != empty && !errors.Is(err, os.ErrNotExist):
			t.Fatalf("the blob directory the restore created stays: %v", err)
		}
	}
}
