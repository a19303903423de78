package verify

import (
	"context"
	"testing"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
)

var blobSpec = replicatest.Spec{Tx: 12, ExportsAfter: []int{0, 6}, PerSegment: 4, Blobs: true}

// TestVerifyBlobs damages the blobs of a real replica one way per case:
// verify names the blob object or manifest and says what is wrong.
func TestVerifyBlobs(t *testing.T) {
	blob := func(i int) func(*replicatest.Replica) string {
		return func(*replicatest.Replica) string { return layout.BlobKey(blobfs.Sum(replicatest.BlobPayload(i))) }
	}
	manifest := func(r *replicatest.Replica) string { return layout.BlobManifestKey(r.Generation, r.Exports[1].Seq) }
	tests := []struct {
		name     string
		damage   func(t *testing.T, r *replicatest.Replica)
		problems []expect
		warnings []expect
		deleted  int // blob objects deleted
	}{
		{name: "intact", damage: func(*testing.T, *replicatest.Replica) {}},
		{
			// Blob 3 is committed by the first segment and listed in the
			// second export's manifest.
			name:     "a referenced blob deleted",
			damage:   func(t *testing.T, r *replicatest.Replica) { r.Delete(t, blob(3)(r)) },
			problems: []expect{{blob(3), []string{"missing: referenced by generations/", ".blobs and 1 more"}}},
			deleted:  1,
		},
		{
			// Blob 2 is purged by transaction 4: only its segment names it.
			name:     "a blob only a segment references deleted",
			damage:   func(t *testing.T, r *replicatest.Replica) { r.Delete(t, blob(2)(r)) },
			problems: []expect{{blob(2), []string{"missing: referenced by generations/", "/segments/"}}},
			deleted:  1,
		},
		{
			name:     "a blob object damaged",
			damage:   func(t *testing.T, r *replicatest.Replica) { r.Flip(t, blob(5)(r), -2) },
			problems: []expect{{blob(5), []string{"corrupt: not a valid blob object: decompress"}}},
		},
		{
			name: "a blob object holding another blob",
			damage: func(t *testing.T, r *replicatest.Replica) {
				r.Replace(t, blob(5)(r), r.Read(t, blob(7)(r)))
			},
			problems: []expect{{blob(5), []string{"corrupt", "does not hold the blob"}}},
		},
		{
			name:     "a manifest deleted",
			damage:   func(t *testing.T, r *replicatest.Replica) { r.Delete(t, manifest(r)) },
			problems: []expect{{manifest, []string{"missing", "has no blob manifest"}}},
		},
		{
			name:     "a manifest damaged",
			damage:   func(t *testing.T, r *replicatest.Replica) { r.Flip(t, manifest(r), 20) },
			problems: []expect{{manifest, []string{"checksum mismatch"}}},
		},
		{
			name: "a manifest without its export",
			damage: func(t *testing.T, r *replicatest.Replica) {
				r.Replace(t, layout.BlobManifestKey(r.Generation, 9999), r.Read(t, manifest(r)))
			},
			warnings: []expect{{func(r *replicatest.Replica) string { return layout.BlobManifestKey(r.Generation, 9999) }, []string{"without its export"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := replicatest.Build(t, blobSpec)
			tc.damage(t, r)
			rep, err := Run(context.Background(), Options{Replica: r.R, Temp: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Problems {
				t.Logf("problem: %s", p)
			}
			match(t, "problem", rep.Problems, tc.problems, r)
			match(t, "warning", rep.Warnings, tc.warnings, r)
			if rep.Blobs == nil || rep.Blobs.Objects != len(r.BlobFiles)-tc.deleted || rep.Blobs.Referenced == 0 {
				t.Fatalf("blob summary %+v (%d blobs built)", rep.Blobs, len(r.BlobFiles))
			}
		})
	}
}
