package restore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/uploader"
)

// TestRestoreBlobsLoadgen ships a load generator's store (tailer run) and
// its filesystem blob store (the blob shipper) and restores both at two
// marks: the blob directory equals the generator's at each mark, although
// later transactions purged some of the first mark's files.
func TestRestoreBlobsLoadgen(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	src, _ := blobfs.NewLayout(filepath.Join(tmp, "blobs"), 2)
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(tmp, "primary"), BlobDir: src.Root, BlobDepth: 2,
		Seed: 23, Accounts: 5, WriteBufferSize: 256 << 10, MaxTotalWALSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r, err := uploader.Open(ctx, "file://"+filepath.Join(tmp, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Run(ctx, 200, 0); err != nil {
		t.Fatal(err)
	}
	sh, err := blobship.NewShipper(ctx, blobship.ShipperOptions{Layout: src, Replica: r})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{DB: g.Dir(), Scratch: filepath.Join(tmp, "scratch"), Replica: r, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- a.Run(runCtx) }()
	go func() { done <- sh.Run(runCtx, blobship.RunOptions{Scan: time.Hour, Retry: 20 * time.Millisecond}) }()
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}()
	shipped := func(m loadgen.Mark) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for _, name := range m.Blobs.Names {
			h, _ := blobfs.ParseName(name)
			for !sh.Has(h) {
				if time.Now().After(deadline) {
					t.Fatalf("blob %s of the mark at %d was not shipped", name, m.Seq)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		for {
			gens, _, err := catalog.List(ctx, r, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(gens) > 0 {
				if n, ok := gens[len(gens)-1].NewestRestorable(); ok && n >= m.Seq {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("seq %d never became restorable", m.Seq)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	m1, err := g.Mark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shipped(m1)
	if _, err := g.Run(ctx, 400, 0); err != nil {
		t.Fatal(err)
	}
	m2, err := g.Mark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shipped(m2)
	if err := loadgen.CompareBlobs(m1, src); err == nil {
		t.Fatal("no blob of the first mark was purged later: the test proves nothing")
	}
	for i, m := range []loadgen.Mark{m1, m2} {
		dir := t.TempDir()
		dst, _ := blobfs.NewLayout(filepath.Join(dir, "blobs"), 2)
		res, err := restore.Run(ctx, restore.Options{Replica: r, To: filepath.Join(dir, "db"), Target: restore.Target{Seq: m.Seq, HasSeq: true},
			Blobs: &restore.BlobOptions{Dir: dst.Root, Depth: 2}})
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Blobs.Report.Err(); err != nil {
			t.Fatalf("mark %d: %v", i+1, err)
		}
		if err := loadgen.CompareBlobs(m, dst); err != nil {
			t.Fatalf("mark %d (seq %d): restored blobs: %v (report %+v)", i+1, m.Seq, err, res.Blobs.Report)
		}
		t.Logf("mark %d: seq %d, %d blobs referenced, %d written", i+1, m.Seq, res.Blobs.Referenced, res.Blobs.Report.Written)
	}
}
