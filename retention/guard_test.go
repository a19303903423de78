package retention_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/retention"
)

// fakeGuard is a shipper whose queue references queued and which
// referenced since BeginBlobGC what refs holds.
type fakeGuard struct {
	queued, refs map[blobfs.Hash]bool
	beginErr     error
	begun, ended int
	tried        []blobfs.Hash
}

func (g *fakeGuard) BeginBlobGC(context.Context) (map[blobfs.Hash]bool, error) {
	if g.beginErr != nil {
		return nil, g.beginErr
	}
	g.begun++
	return g.queued, nil
}

func (g *fakeGuard) DeleteBlobs(_ context.Context, decide func(func(blobfs.Hash) bool) ([]blobfs.Hash, error)) error {
	tried, err := decide(func(h blobfs.Hash) bool { return g.refs[h] })
	g.tried = append(g.tried, tried...)
	return err
}

func (g *fakeGuard) EndBlobGC() { g.ended++ }

// TestApplyBlobGuard: with a guard, a blob its queue references or that
// it referenced meanwhile stays, the others go through DeleteBlobs, which
// learns every blob deleted; SkipBlobs leaves every blob and asks no
// guard. The rest of the plan is deleted in every case.
func TestApplyBlobGuard(t *testing.T) {
	ctx := context.Background()
	only := blobfs.Sum(replicatest.BlobPayload(2)) // referenced only before the kept export
	for _, tc := range []struct {
		name        string
		guard       *fakeGuard
		skip        bool
		wantDeleted bool
		wantTried   []blobfs.Hash
	}{
		{"no reference", &fakeGuard{}, false, true, []blobfs.Hash{only}},
		{"in the spool", &fakeGuard{queued: map[blobfs.Hash]bool{only: true}}, false, false, nil},
		{"referenced meanwhile", &fakeGuard{refs: map[blobfs.Hash]bool{only: true}}, false, false, nil},
		{"skip blobs", &fakeGuard{}, true, false, nil},
		{"guard busy", &fakeGuard{beginErr: errors.New("busy")}, false, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := replicatest.Build(t, replicatest.Spec{Tx: 12, ExportsAfter: []int{0, 6}, PerSegment: 4, Blobs: true})
			p := retention.Policy{KeepExports: 1, Blobs: tc.guard, SkipBlobs: tc.skip}
			got, err := retention.Apply(ctx, rep.R, p, time.Now().Add(48*time.Hour), nil)
			if err != nil {
				t.Fatal(err)
			}
			var deleted []string
			for _, d := range got.Deleted {
				deleted = append(deleted, d.Key)
			}
			if !slices.Contains(deleted, rep.Exports[0].Key) {
				t.Errorf("the old export was not deleted: %v", deleted)
			}
			if has := slices.Contains(deleted, layout.BlobKey(only)); has != tc.wantDeleted {
				t.Errorf("blob deleted = %v, want %v (%v)", has, tc.wantDeleted, deleted)
			}
			if _, err := rep.R.Get(ctx, layout.BlobKey(only)); (err != nil) != tc.wantDeleted {
				t.Errorf("blob object present = %v after deleted = %v", err == nil, tc.wantDeleted)
			}
			if !slices.Equal(tc.guard.tried, tc.wantTried) {
				t.Errorf("the guard learnt %v deleted, want %v", tc.guard.tried, tc.wantTried)
			}
			if wantBegun := !tc.skip && tc.guard.beginErr == nil; (tc.guard.begun == 1) != wantBegun || tc.guard.ended != tc.guard.begun {
				t.Errorf("BeginBlobGC %d, EndBlobGC %d times", tc.guard.begun, tc.guard.ended)
			}
		})
	}
}
