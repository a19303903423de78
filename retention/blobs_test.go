package retention_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/retention"
	"github.com/tailer-backup/tailer/verify"
)

// TestApplyBlobs prunes a real replica of a filesystem blob store: the
// old export goes with its manifest, the blob only the deleted points
// referenced goes once it is older than the grace period, every blob a
// kept point references stays (a blob purged from the server before the
// kept export included, if a kept segment commits it), verify still
// passes and the kept point restores with all its blobs.
func TestApplyBlobs(t *testing.T) {
	ctx := context.Background()
	// Segments of transactions 1-4, 5-8 and 9-12; exports before 1 and
	// after 6. Keeping one export keeps the export after 6, the segments
	// 5-8 (it straddles the export) and 9-12. Blob 2 (purged by
	// transaction 4) is referenced only before the kept export; blob 6 is
	// purged by transaction 8 but the kept manifest lists it.
	rep := replicatest.Build(t, replicatest.Spec{Tx: 12, ExportsAfter: []int{0, 6}, PerSegment: 4, Blobs: true})
	only := layout.BlobKey(blobfs.Sum(replicatest.BlobPayload(2)))
	oldManifest := layout.BlobManifestKey(rep.Generation, rep.Exports[0].Seq)
	p := retention.Policy{KeepExports: 1}

	// Within the grace period no blob goes (the manifest does, with its export).
	got, err := retention.Apply(ctx, rep.R, p, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []retention.Kind
	var deleted []string
	for _, d := range got.Deleted {
		kinds = append(kinds, d.Kind)
		deleted = append(deleted, d.Key)
	}
	want := []string{rep.Exports[0].Key, oldManifest, rep.Segments[0].Key}
	if !slices.Equal(deleted, want) || slices.Contains(kinds, retention.KindBlob) {
		t.Fatalf("deleted %v, want %v", deleted, want)
	}

	// Two days later: blob 2 goes, nothing else.
	later := time.Now().Add(48 * time.Hour)
	got, err = retention.Apply(ctx, rep.R, retention.Policy{KeepExports: 1, DryRun: true}, later, nil)
	if err != nil || len(got.Deleted) != 1 || got.Deleted[0].Key != only || got.Deleted[0].Kind != retention.KindBlob {
		t.Fatalf("dry run: %+v, %v", got.Deleted, err)
	}
	if _, err := rep.R.Get(ctx, only); err != nil {
		t.Fatal("a dry run deleted:", err)
	}
	got, err = retention.Apply(ctx, rep.R, p, later, nil)
	if err != nil || len(got.Deleted) != 1 || got.Deleted[0].Key != only {
		t.Fatalf("deleted %+v, %v", got.Deleted, err)
	}
	blobs, _ := rep.R.List(ctx, layout.BlobsRoot)
	if len(blobs) != len(rep.BlobFiles)-1 {
		t.Fatalf("%d blob objects left, want %d", len(blobs), len(rep.BlobFiles)-1)
	}
	vr, err := verify.Run(ctx, verify.Options{Replica: rep.R, Temp: t.TempDir()})
	if err != nil || !vr.OK() {
		t.Fatalf("verify after retention: %v %v", vr.Problems, err)
	}
	// The kept export's point, whose manifest lists blob 6 purged later.
	seq := rep.Exports[1].Seq
	dir := t.TempDir()
	l, _ := blobfs.NewLayout(filepath.Join(dir, "blobs"), 2)
	res, err := restore.Run(ctx, restore.Options{Replica: rep.R, To: filepath.Join(dir, "db"), Target: restore.Target{Seq: seq, HasSeq: true},
		Blobs: &restore.BlobOptions{Dir: l.Root, Depth: 2}})
	if err != nil || res.Blobs.Report.Err() != nil || res.Blobs.Report.Written != len(rep.BlobsAt[seq]) {
		t.Fatalf("restore of the kept point: %+v, %v", res.Blobs, err)
	}
}

// TestApplyBlobsUnknownNeeds: when what a kept point needs cannot be
// known (its export lost its manifest), no blob is deleted.
func TestApplyBlobsUnknownNeeds(t *testing.T) {
	ctx := context.Background()
	rep := replicatest.Build(t, replicatest.Spec{Tx: 12, ExportsAfter: []int{0, 6}, PerSegment: 4, Blobs: true})
	rep.Delete(t, layout.BlobManifestKey(rep.Generation, rep.Exports[1].Seq))
	got, err := retention.Apply(ctx, rep.R, retention.Policy{KeepExports: 1}, time.Now().Add(48*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range got.Deleted {
		if d.Kind == retention.KindBlob {
			t.Fatalf("deleted blob %s although the kept export's needs are unknown", d.Key)
		}
	}
}
