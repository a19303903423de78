package blobship

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/miniotest"
	"github.com/tailer-backup/tailer/uploader"
)

// TestRestoreTiming measures restoring a blob directory of 2,000 blobs
// (about 10 KB each, raw and LZ4 mixed) from file:// and from MinIO, with
// the default workers. It only logs the times (never asserts them) and
// runs with TAILER_BLOB_TIMING=1.
func TestRestoreTiming(t *testing.T) {
	if os.Getenv("TAILER_BLOB_TIMING") == "" {
		t.Skip("set TAILER_BLOB_TIMING=1 to measure")
	}
	const n = 2000
	ctx := context.Background()
	enc, _ := NewEncoder()
	var refs []bloblink.Ref
	objs := map[string][]byte{}
	var total int64
	for i := range n {
		p := randomBytes(uint64(i), 6000)
		p = append(p, bytes.Repeat([]byte(fmt.Sprintf("line %d of a mail body\r\n", i)), 200)...)
		h := blobfs.Sum(p)
		file := blobfs.Encode(p, i%2 == 0)
		objs[layout.BlobKey(h)] = enc.Encode(file)
		total += int64(len(file))
		refs = append(refs, bloblink.Ref{Hash: h, Committed: true, Documents: 1, Owner: uint32(i % 50), HasOwner: true})
	}
	mc := miniotest.Start(t)
	mc.SetEnv(t)
	mc.CreateBucket("timing")
	s3, err := uploader.Open(ctx, mc.URL("timing", "p"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]uploader.Replica{"file": fileReplica(t), "minio": s3} {
		for k, o := range objs {
			if err := r.Put(ctx, k, bytes.NewReader(o), int64(len(o))); err != nil {
				t.Fatal(err)
			}
		}
		for _, workers := range []int{1, DefaultWorkers} {
			dst, _ := blobfs.NewLayout(filepath.Join(t.TempDir(), "blobs"), 2)
			start := time.Now()
			rep, err := Restore(ctx, RestoreOptions{Replica: r, Layout: dst, Refs: refs, Workers: workers})
			took := time.Since(start)
			if err != nil || rep.Written != n {
				t.Fatalf("%s: %+v, %v", name, rep, err)
			}
			t.Logf("%s, %d workers: %d blobs (%.1f MB of files) restored in %s (%.0f blobs/s)", name, workers, n, float64(total)/1e6, took.Round(time.Millisecond), float64(n)/took.Seconds())
		}
	}
}
