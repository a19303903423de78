package restore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/segment"
)

// damageSpec: exports at 0 and after 8 transactions, segments of 4
// batches: seg[0] = tx 1-4, seg[1] = tx 5-8, seg[2] = tx 9-12,
// seg[3] = tx 13-16.
var damageSpec = replicatest.Spec{Tx: 16, ExportsAfter: []int{0, 8}, PerSegment: 4}

// TestRestoreOnDamage damages one object of a real replica and checks
// that restore either refuses, naming the object and the problem, or
// (with AllowPartial) stops at the last good batch before it and says so;
// and that whatever it reports as restored equals the source at that
// sequence number.
func TestRestoreOnDamage(t *testing.T) {
	type want struct {
		errs    []string // the restore fails with all of these in its error
		seq     func(r *replicatest.Replica) uint64
		partial bool
		notes   []string
	}
	seg := func(i int) func(r *replicatest.Replica) string {
		return func(r *replicatest.Replica) string { return r.Segments[i].Key }
	}
	endOf := func(i int) func(r *replicatest.Replica) uint64 {
		return func(r *replicatest.Replica) uint64 { return r.Segments[i].Last }
	}
	exportSeq := func(i int) func(r *replicatest.Replica) uint64 {
		return func(r *replicatest.Replica) uint64 { return r.Exports[i].Seq }
	}
	bodyByte := func(r *replicatest.Replica, key string) int64 { return int64(len(r.Read(t, key)) / 2) }
	tests := []struct {
		name         string
		damage       func(t *testing.T, r *replicatest.Replica) string // returns the damaged key
		target       func(r *replicatest.Replica) Target
		strict, part want
	}{
		{
			name:   "intact",
			damage: func(t *testing.T, r *replicatest.Replica) string { return "" },
			strict: want{seq: endOf(3)},
			part:   want{seq: endOf(3)},
		},
		{
			name: "flipped byte in a segment after the newest export",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				r.Flip(t, seg(2)(r), bodyByte(r, seg(2)(r)))
				return seg(2)(r)
			},
			strict: want{errs: []string{"restore stopped", "corrupt", "nothing was written", "AllowPartial restores up to"}},
			part:   want{seq: exportSeq(1), partial: true, notes: []string{"stopped at", "corrupt"}},
		},
		{
			name: "truncated segment",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				r.Truncate(t, seg(3)(r), -10)
				return seg(3)(r)
			},
			strict: want{errs: []string{"restore stopped", "truncated"}},
			part:   want{seq: endOf(2), partial: true, notes: []string{"truncated"}},
		},
		{
			name: "segment deleted in the middle of the chain",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				r.Delete(t, seg(2)(r))
				return seg(3)(r) // the hole is reported before the next segment
			},
			strict: want{errs: []string{"cannot restore to sequence", "no segment of generation", "holds sequence numbers", "AllowPartial restores up to"}},
			part:   want{seq: exportSeq(1), partial: true, notes: []string{"no segment of generation"}},
		},
		{
			name: "segment from a newer format",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				r.Replace(t, seg(3)(r), replicatest.FutureVersion(r.Read(t, seg(3)(r)), 2))
				return seg(3)(r)
			},
			strict: want{errs: []string{"format version 2", "upgrade tailer"}},
			part:   want{seq: endOf(2), partial: true, notes: []string{"upgrade tailer"}},
		},
		{
			name: "segment whose name lies about its range",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				s := r.Segments[3]
				b := r.Read(t, s.Key)
				r.Delete(t, s.Key)
				key := layout.SegmentKey(r.Generation, s.First, s.Last+5)
				r.Replace(t, key, b) // the file backend creates it
				return key
			},
			strict: want{errs: []string{"misnamed or corrupt"}},
			part:   want{seq: endOf(2), partial: true, notes: []string{"misnamed"}},
		},
		{
			name: "segment missing a batch inside",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				s := r.Segments[3]
				bs := r.BatchesOf(s.Key)
				r.Delete(t, s.Key)
				return r.SealSegment(t, s.First, s.Last, append(bs[:1:1], bs[2:]...))
			},
			strict: want{errs: []string{"does not follow sequence", "the chain is broken", "AllowPartial keeps the state at"}},
			part: want{seq: func(r *replicatest.Replica) uint64 { return r.Batches[12].Last }, partial: true,
				notes: []string{"does not follow"}},
		},
		{
			name: "segment ending before its name says",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				s := r.Segments[3]
				bs := r.BatchesOf(s.Key)
				r.Delete(t, s.Key)
				return r.SealSegment(t, s.First, s.Last, bs[:3])
			},
			strict: want{errs: []string{"holds fewer batches than it claims"}},
			part:   want{seq: func(r *replicatest.Replica) uint64 { return r.Batches[14].Last }, partial: true, notes: []string{"fewer batches"}},
		},
		{
			name: "damaged wide segment beside the narrow ones compaction left",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				a, b := r.Segments[2], r.Segments[3]
				wide := r.SealSegment(t, a.First, b.Last, append(r.BatchesOf(a.Key), r.BatchesOf(b.Key)...))
				r.Flip(t, wide, bodyByte(r, wide))
				return wide
			},
			strict: want{seq: endOf(3), notes: []string{"corrupt", "restored through other segments"}},
			part:   want{seq: endOf(3), notes: []string{"corrupt", "restored through other segments"}},
		},
		{
			name: "damaged newest export: the older one and more replay give the same state",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				r.Flip(t, r.Exports[1].Key, bodyByte(r, r.Exports[1].Key))
				return r.Exports[1].Key
			},
			strict: want{seq: endOf(3), notes: []string{"restored from the older export"}},
			part:   want{seq: endOf(3), notes: []string{"restored from the older export"}},
		},
		{
			name: "damaged only export before the target",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				r.Flip(t, r.Exports[0].Key, bodyByte(r, r.Exports[0].Key))
				return r.Exports[0].Key
			},
			target: func(r *replicatest.Replica) Target { return Target{Seq: r.Segments[0].Last, HasSeq: true} },
			strict: want{errs: []string{"corrupt", "no usable export at or before sequence"}},
			part:   want{errs: []string{"corrupt", "no usable export at or before sequence"}},
		},
		{
			name: "--seq at an export after a damaged segment",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				r.Flip(t, seg(0)(r), bodyByte(r, seg(0)(r)))
				return seg(0)(r)
			},
			target: func(r *replicatest.Replica) Target { return Target{Seq: r.Segments[1].Last - 0, HasSeq: true} },
			// The export after 8 transactions is at the end of segment 1:
			// it is the base, so segment 0 is not needed at all.
			strict: want{seq: endOf(1)},
			part:   want{seq: endOf(1)},
		},
		{
			name: "--seq inside a hole",
			damage: func(t *testing.T, r *replicatest.Replica) string {
				r.Delete(t, seg(0)(r))
				return seg(1)(r)
			},
			target: func(r *replicatest.Replica) Target { return Target{Seq: r.Segments[0].Last, HasSeq: true} },
			strict: want{errs: []string{"cannot restore to sequence", "no segment of generation"}},
			part:   want{seq: exportSeq(0), partial: true, notes: []string{"stopped at"}},
		},
	}
	for _, tc := range tests {
		// One replica per case: restore only reads it.
		r := replicatest.Build(t, damageSpec)
		key := tc.damage(t, r)
		for _, partial := range []bool{false, true} {
			w := tc.strict
			name := tc.name + "/strict"
			if partial {
				w, name = tc.part, tc.name+"/allow-partial"
			}
			t.Run(name, func(t *testing.T) {
				var target Target
				if tc.target != nil {
					target = tc.target(r)
				}
				to := filepath.Join(t.TempDir(), "restored")
				res, err := Run(context.Background(), Options{Replica: r.R, To: to, Target: target, AllowPartial: partial, Digests: true})
				if w.errs != nil {
					t.Logf("error: %v", err)
					if err == nil {
						t.Fatalf("restore succeeded at %d (note %q), want an error", res.Seq, res.Note)
					}
					for _, s := range append(w.errs, key) {
						if s != "" && !strings.Contains(err.Error(), s) {
							t.Errorf("error %q does not contain %q", err, s)
						}
					}
					if _, serr := os.Stat(to); !errors.Is(serr, os.ErrNotExist) {
						t.Errorf("a failed restore left %s behind (%v)", to, serr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("restored at %d, note: %s", res.Seq, res.Note)
				if want := w.seq(r); res.Seq != want {
					t.Errorf("restored at %d, want %d (note %q)", res.Seq, want, res.Note)
				}
				if res.Partial != w.partial {
					t.Errorf("Partial = %v, want %v (note %q)", res.Partial, w.partial, res.Note)
				}
				for _, s := range w.notes {
					if !strings.Contains(res.Note, s) {
						t.Errorf("note %q does not contain %q", res.Note, s)
					}
				}
				if w.partial && key != "" && !strings.Contains(res.Note, key) {
					t.Errorf("note %q does not name %s", res.Note, key)
				}
				sameState(t, res.Families, r.StateAt(t, res.Seq))
			})
		}
	}
}

// sameState compares a restored store's digests with the source's.
func sameState(t *testing.T, got, want []segment.FamilySum) {
	t.Helper()
	m := map[string]segment.FamilySum{}
	for _, f := range got {
		m[f.Name] = f
	}
	for _, f := range want {
		if g := m[f.Name]; g.Keys != f.Keys || g.Digest != f.Digest {
			t.Errorf("family %s: restored %d keys %.12s, source had %d keys %.12s", f.Name, g.Keys, g.Digest, f.Keys, f.Digest)
		}
	}
}

// TestRestoreRefusesFutureGeneration: a generation.json from a newer
// format may change what the objects mean, so restore refuses it.
func TestRestoreRefusesFutureGeneration(t *testing.T) {
	r := replicatest.Build(t, replicatest.Spec{Tx: 4})
	r.Replace(t, layout.MetaKey(r.Generation), []byte(`{"id":"`+r.Generation+`","format_version":2}`))
	_, err := Run(context.Background(), Options{Replica: r.R, To: filepath.Join(t.TempDir(), "x")})
	if !errors.Is(err, layout.ErrFutureFormat) || !strings.Contains(err.Error(), "upgrade tailer") {
		t.Fatalf("err = %v, want a refusal naming the newer format", err)
	}
}

// TestRestoreSeqOutside: sequence numbers outside every generation are
// refused with the reason and the ranges that are restorable.
func TestRestoreSeqOutside(t *testing.T) {
	r := replicatest.Build(t, replicatest.Spec{Tx: 4, ExportsAfter: []int{1}})
	tests := []struct {
		seq  uint64
		want string
	}{
		{1, "before the oldest export"},
		{r.Segments[len(r.Segments)-1].Last + 1, "after the newest batch"},
	}
	for _, tc := range tests {
		_, err := Run(context.Background(), Options{Replica: r.R, To: filepath.Join(t.TempDir(), "x"), Target: Target{Seq: tc.seq, HasSeq: true}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), r.Generation) {
			t.Errorf("seq %d: err = %v, want %q and the restorable range", tc.seq, err, tc.want)
		}
	}
}
