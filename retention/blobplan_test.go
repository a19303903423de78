package retention

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/layout"
)

// withManifests gives g a blob manifest for each export, plus ones at
// extra sequence numbers (manifests left without their export).
func withManifests(g layout.Generation, extra ...uint64) layout.Generation {
	seqs := extra
	for _, e := range g.Exports {
		seqs = append(seqs, e.Seq)
	}
	for _, s := range seqs {
		g.BlobManifests = append(g.BlobManifests, layout.Export{Object: layout.Object{Key: layout.BlobManifestKey(g.ID, s), Size: 77}, Seq: s})
	}
	return g
}

func shortAny(key string) string {
	if m, ok := strings.CutSuffix(key, layout.BlobManifestSuffix); ok {
		return short(m) + ".blobs"
	}
	return short(key)
}

// TestDecideManifests: a blob manifest is deleted right after its export,
// with its generation, or (left without export) with the exports older
// than the base; the kept exports' manifests stay.
func TestDecideManifests(t *testing.T) {
	g1, t1 := gen("g1", []exp{{10, day(1)}, {50, day(2)}}, [2]uint64{11, 30}, [2]uint64{31, 60})
	g2, t2 := gen("g2", []exp{{5, day(3)}, {15, day(3.5)}}, [2]uint64{6, 15}, [2]uint64{16, 20})
	times := map[string]time.Time{}
	for _, m := range []map[string]time.Time{t1, t2} {
		for k, v := range m {
			times[k] = v
		}
	}
	tests := []struct {
		name    string
		gens    []layout.Generation
		policy  Policy
		deleted string
	}{
		{"with the generation", []layout.Generation{withManifests(g1, 7), withManifests(g2)}, Policy{KeepExports: 2},
			"[g1/e10 g1/e10.blobs g1/e50 g1/e50.blobs g1/e7.blobs g1/s11-30 g1/s31-60 g1/meta]"},
		{"with an older export, an orphan older than the base too", []layout.Generation{withManifests(g2, 3, 17)}, Policy{KeepExports: 1},
			"[g2/e5 g2/e5.blobs g2/e3.blobs g2/s6-15]"},
		{"nothing older: all stay", []layout.Generation{withManifests(g2)}, Policy{KeepExports: 2}, "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := decide(tc.gens, times, allGood, tc.policy, day(4))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range pl.deletions {
				got = append(got, shortAny(d.Key))
			}
			if fmt.Sprint(got) != tc.deleted && !(len(got) == 0 && tc.deleted == "[]") {
				t.Errorf("deleted\n got %v\nwant %s", got, tc.deleted)
			}
		})
	}
	g := withManifests(g2)
	kept := []exportRef{{0, g.Exports[1]}}
	if err := prove([]layout.Generation{g}, kept, map[string]bool{layout.BlobManifestKey("g2", 15): true}); err == nil || !strings.Contains(err.Error(), "blob manifest") {
		t.Fatalf("deleting a kept export's manifest: %v", err)
	}
}

// TestBlobPlan: a blob goes only when no kept manifest lists it, no kept
// segment commits it, and it is older than the grace period.
func TestBlobPlan(t *testing.T) {
	now := day(10)
	blob := func(name string, age time.Duration) layout.Blob {
		h := blobfs.Sum([]byte(name))
		return layout.Blob{Object: layout.Object{Key: layout.BlobKey(h), Size: 100, Modified: now.Add(-age)}, Hash: h}
	}
	h := func(name string) blobfs.Hash { return blobfs.Sum([]byte(name)) }
	tests := []struct {
		name      string
		blobs     []layout.Blob
		need      []string // in a kept manifest
		committed []string // by a kept segment
		grace     time.Duration
		deleted   []string
	}{
		{"unreferenced and old", []layout.Blob{blob("a", 48*time.Hour)}, nil, nil, DefaultBlobGrace, []string{"a"}},
		{"young: may be for a segment not uploaded yet", []layout.Blob{blob("a", time.Hour)}, nil, nil, DefaultBlobGrace, nil},
		{"exactly at the grace period", []layout.Blob{blob("a", DefaultBlobGrace)}, nil, nil, DefaultBlobGrace, []string{"a"}},
		{"a kept manifest lists it", []layout.Blob{blob("a", 48*time.Hour)}, []string{"a"}, nil, DefaultBlobGrace, nil},
		{"a kept segment commits it", []layout.Blob{blob("a", 48*time.Hour)}, nil, []string{"a"}, DefaultBlobGrace, nil},
		{"a shorter grace", []layout.Blob{blob("a", 2*time.Hour), blob("b", 2*time.Hour)}, []string{"b"}, nil, time.Hour, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			need, committed := map[blobfs.Hash]bool{}, map[blobfs.Hash]bool{}
			for _, n := range tc.need {
				need[h(n)] = true
			}
			for _, n := range tc.committed {
				committed[h(n)] = true
			}
			dels := blobDeletions(blobCandidates(tc.blobs, need, now, tc.grace), committed, tc.grace)
			var got []string
			for _, d := range dels {
				for _, n := range []string{"a", "b"} {
					if d.Key == layout.BlobKey(h(n)) {
						got = append(got, n)
					}
				}
				if d.Kind != KindBlob {
					t.Errorf("kind %s", d.Kind)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.deleted) {
				t.Errorf("deleted %v, want %v", got, tc.deleted)
			}
		})
	}
}
