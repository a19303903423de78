package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/lease"
)

// TestPruneBlobsNeedTheLease: prune deletes blob objects only when it
// can take the replica's lease. While a live tailer holds it, prune does
// the rest of retention, leaves every blob object and says so; with the
// lease free it deletes the unreferenced old blob as before, and releases
// the lease after.
func TestPruneBlobsNeedTheLease(t *testing.T) {
	ctx := context.Background()
	rep := replicatest.Build(t, replicatest.Spec{Tx: 12, ExportsAfter: []int{0, 6}, PerSegment: 4, Blobs: true})
	only := layout.BlobKey(blobfs.Sum(replicatest.BlobPayload(2))) // referenced only before the kept export
	old := time.Now().Add(-48 * time.Hour)                         // past the blob grace period
	ents, err := os.ReadDir(filepath.Join(rep.Dir, layout.BlobsRoot))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(rep.Dir, layout.BlobsRoot, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}
	blobCount := func() int {
		objs, err := rep.R.List(ctx, layout.BlobsRoot)
		if err != nil {
			t.Fatal(err)
		}
		return len(objs)
	}
	all := blobCount()

	h, err := lease.Acquire(ctx, rep.R, lease.Options{TTL: time.Minute, DB: "a running tailer"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		release  bool
		want     []string
		wantLeft int
	}{
		{"live lease", false, []string{"blob objects are left to the running tailer's maintenance (holder ", "deleted 3 objects"}, all},
		{"lease free", true, []string{"deleted 1 objects", "1 blobs"}, all - 1},
	} {
		if tc.release {
			if err := h.Release(ctx); err != nil {
				t.Fatal(err)
			}
		}
		out, err := runCLI(t, "prune", "--replica", rep.URL, "--retain-exports", "1")
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out)
			}
		}
		if n := blobCount(); n != tc.wantLeft {
			t.Errorf("%s: %d blob objects left, want %d\n%s", tc.name, n, tc.wantLeft, out)
		}
		if _, err := rep.R.Get(ctx, only); (err == nil) != !tc.release {
			t.Errorf("%s: blob %s present = %v", tc.name, only, err == nil)
		}
	}
	// prune released the lease it took: a tailer starts at once.
	h2, err := lease.Acquire(ctx, rep.R, lease.Options{})
	if err != nil {
		t.Fatalf("the lease after prune: %v", err)
	}
	h2.Release(ctx)
}
