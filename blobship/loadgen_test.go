package blobship

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/integration/loadgen"
)

// TestShipAndRestoreLoadgen ships the blob store of a running load
// generator (files written in place, in pieces, links in Stalwart's
// order), then restores the blobs k referenced at a mark, after later
// purges removed some of their files, and compares them with the mark.
func TestShipAndRestoreLoadgen(t *testing.T) {
	if testing.Short() {
		t.Skip("ships and restores the blob store of a live load generator: skipped under -short")
	}
	dir := t.TempDir()
	g, err := loadgen.Open(loadgen.Config{
		Dir: filepath.Join(dir, "primary"), BlobDir: filepath.Join(dir, "blobs"), BlobDepth: 2,
		Seed: 11, Accounts: 5, WriteBufferSize: 256 << 10,
		BetweenBlobWrites: func(string) { time.Sleep(100 * time.Microsecond) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	src, _ := blobfs.NewLayout(filepath.Join(dir, "blobs"), 2)
	r := fileReplica(t)
	sh, err := NewShipper(context.Background(), ShipperOptions{Layout: src, Replica: r})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx, RunOptions{Scan: time.Hour, Retry: 20 * time.Millisecond}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	if _, err := g.Run(context.Background(), 400, 0); err != nil {
		t.Fatal(err)
	}
	m, err := g.Mark(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	snap := g.Store().DB.NewSnapshot()
	defer g.Store().DB.ReleaseSnapshot(snap)
	for _, name := range m.Blobs.Names {
		h, _ := blobfs.ParseName(name)
		for deadline := time.Now().Add(20 * time.Second); !sh.Has(h); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("blob %s referenced at the mark was not shipped", name)
			}
		}
	}
	// Later transactions expunge messages and purge their files.
	if _, err := g.Run(context.Background(), 600, 0); err != nil {
		t.Fatal(err)
	}
	if err := loadgen.CompareBlobs(m, src); err == nil {
		t.Fatal("no blob of the mark was purged later: the restore below proves nothing")
	}

	refs, _, err := bloblink.Read(context.Background(), g.Store(), snap)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := blobfs.NewLayout(filepath.Join(dir, "restored"), 2)
	rep, err := Restore(context.Background(), RestoreOptions{Replica: r, Layout: dst, Refs: refs})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if err := loadgen.CompareBlobs(m, dst); err != nil {
		t.Fatalf("restored blob store: %v (report %+v)", err, rep)
	}
}
