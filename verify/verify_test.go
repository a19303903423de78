package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/internal/wbatch"
)

// spec: exports before the first and after the 8th transaction; four
// segments of four batches; the second export sits at the end of
// Segments[1].
var spec = replicatest.Spec{Tx: 16, ExportsAfter: []int{0, 8}, PerSegment: 4}

func middle(t *testing.T, r *replicatest.Replica, key string) int64 {
	return int64(len(r.Read(t, key)) / 2)
}

// TestVerify damages a real replica in one way per case and checks that
// verify reports exactly that, naming the object, and nothing else.
// expect is one problem or warning a test case expects.
type expect struct {
	object   func(r *replicatest.Replica) string // the key named ("": the generation as a whole)
	contains []string
}

func TestVerify(t *testing.T) {
	seg := func(i int) func(r *replicatest.Replica) string {
		return func(r *replicatest.Replica) string { return r.Segments[i].Key }
	}
	tests := []struct {
		name     string
		damage   func(t *testing.T, r *replicatest.Replica)
		deep     bool
		problems []expect // in report order
		warnings []expect
	}{
		{name: "intact", damage: func(*testing.T, *replicatest.Replica) {}},
		{name: "intact, deep", deep: true, damage: func(*testing.T, *replicatest.Replica) {}},
		{
			name:     "flipped byte in a segment",
			damage:   func(t *testing.T, r *replicatest.Replica) { r.Flip(t, seg(2)(r), middle(t, r, seg(2)(r))) },
			problems: []expect{{seg(2), []string{"corrupt"}}},
		},
		{
			name: "flipped byte in an export",
			damage: func(t *testing.T, r *replicatest.Replica) {
				r.Flip(t, r.Exports[1].Key, middle(t, r, r.Exports[1].Key))
			},
			deep:     true,
			problems: []expect{{func(r *replicatest.Replica) string { return r.Exports[1].Key }, []string{"corrupt"}}},
		},
		{
			name:     "truncated segment",
			damage:   func(t *testing.T, r *replicatest.Replica) { r.Truncate(t, seg(3)(r), -3) },
			problems: []expect{{seg(3), []string{"truncated"}}},
		},
		{
			name:     "segment deleted in the middle",
			damage:   func(t *testing.T, r *replicatest.Replica) { r.Delete(t, seg(2)(r)) },
			problems: []expect{{seg(3), []string{"no segment holds sequence numbers", "hole", "restores past it are impossible"}}},
		},
		{
			name:     "segment deleted before a later export",
			damage:   func(t *testing.T, r *replicatest.Replica) { r.Delete(t, seg(0)(r)) },
			problems: []expect{{seg(1), []string{"hole", "a later export bridges it"}}},
		},
		{
			name: "newer segment format",
			damage: func(t *testing.T, r *replicatest.Replica) {
				r.Replace(t, seg(1)(r), replicatest.FutureVersion(r.Read(t, seg(1)(r)), 2))
			},
			problems: []expect{{seg(1), []string{"format version 2", "upgrade tailer"}}},
		},
		{
			name:     "missing generation.json",
			damage:   func(t *testing.T, r *replicatest.Replica) { r.Delete(t, layout.MetaKey(r.Generation)) },
			problems: []expect{{func(r *replicatest.Replica) string { return layout.MetaKey(r.Generation) }, []string{"missing"}}},
		},
		{
			name: "newer generation.json",
			damage: func(t *testing.T, r *replicatest.Replica) {
				r.Replace(t, layout.MetaKey(r.Generation), []byte(`{"id":"`+r.Generation+`","format_version":3}`))
			},
			problems: []expect{{func(r *replicatest.Replica) string { return layout.MetaKey(r.Generation) }, []string{"format version 3", "upgrade tailer"}}},
		},
		{
			name: "segment missing a batch inside",
			damage: func(t *testing.T, r *replicatest.Replica) {
				s := r.Segments[1]
				bs := r.BatchesOf(s.Key)
				r.SealSegment(t, s.First, s.Last, append(bs[:2:2], bs[3:]...))
			},
			problems: []expect{{seg(1), []string{"does not follow", "missing"}}},
		},
		{
			name: "segment ending before its name",
			damage: func(t *testing.T, r *replicatest.Replica) {
				s := r.Segments[3]
				r.SealSegment(t, s.First, s.Last, r.BatchesOf(s.Key)[:3])
			},
			problems: []expect{{seg(3), []string{"its batches end at seq"}}},
		},
		{
			name: "segment from another store",
			damage: func(t *testing.T, r *replicatest.Replica) {
				s := r.Segments[0]
				r.Meta.DBIdentity = "some-other-store"
				r.SealSegment(t, s.First, s.Last, r.BatchesOf(s.Key))
			},
			problems: []expect{{seg(0), []string{"DB identity some-other-store", "another store"}}},
		},
		{
			name: "overlapping segments that agree",
			damage: func(t *testing.T, r *replicatest.Replica) {
				a, b := r.Segments[1], r.Segments[2]
				r.SealSegment(t, a.First, b.Last, append(r.BatchesOf(a.Key), r.BatchesOf(b.Key)...))
			},
			deep: true,
		},
		{
			name: "overlapping segments that disagree",
			damage: func(t *testing.T, r *replicatest.Replica) {
				a, b := r.Segments[1], r.Segments[2]
				bs := append(r.BatchesOf(a.Key), r.BatchesOf(b.Key)...)
				bs[5].Data = changeValue(t, bs[5].Data)
				r.SealSegment(t, a.First, b.Last, bs)
			},
			problems: []expect{{func(r *replicatest.Replica) string { return r.Segments[2].Key }, []string{"overlaps", "disagree", "different bytes"}}},
		},
		{
			name: "export whose content is not the chain's state: only deep sees it",
			damage: func(t *testing.T, r *replicatest.Replica) {
				r.WriteExport(t, r.Exports[1].Seq, map[string]map[string]string{"p": {"doc-9999": "not what the primary held"}})
			},
			deep: true,
			problems: []expect{{func(r *replicatest.Replica) string { return r.Exports[1].Key },
				[]string{"deep: replaying from the export at", "does not give this export's state"}}},
		},
		{
			name: "older generation without export, newest without export",
			damage: func(t *testing.T, r *replicatest.Replica) {
				old := r.Exports
				r.AddGeneration(t, replicatest.Spec{Tx: 4, ExportsAfter: []int{}})
				for _, e := range old {
					r.Delete(t, e.Key)
				}
			},
			problems: []expect{{func(*replicatest.Replica) string { return "" }, []string{"no export: the generation cannot be restored"}}},
			warnings: []expect{{func(*replicatest.Replica) string { return "" }, []string{"no export yet"}}},
		},
		{
			name: "foreign object",
			damage: func(t *testing.T, r *replicatest.Replica) {
				r.Replace(t, "generations/"+r.Generation+"/exports/notes.txt", []byte("hi"))
			},
			warnings: []expect{{func(r *replicatest.Replica) string { return "generations/" + r.Generation + "/exports/notes.txt" }, []string{"not an object tailer writes"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := replicatest.Build(t, spec)
			tc.damage(t, r)
			rep, err := Run(context.Background(), Options{Replica: r.R, Deep: tc.deep, Temp: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Problems {
				t.Logf("problem: %s", p)
			}
			for _, p := range rep.Warnings {
				t.Logf("warning: %s", p)
			}
			match(t, "problem", rep.Problems, tc.problems, r)
			match(t, "warning", rep.Warnings, tc.warnings, r)
			if rep.OK() != (len(tc.problems) == 0) {
				t.Errorf("OK() = %v with %d problems", rep.OK(), len(rep.Problems))
			}
			if tc.name == "intact" || tc.name == "intact, deep" {
				checkIntact(t, r, rep, tc.deep)
			}
		})
	}
}

func match(t *testing.T, what string, got []Problem, want []expect, r *replicatest.Replica) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d %ss, want %d: %v", len(got), what, len(want), got)
	}
	for i, w := range want {
		if obj := w.object(r); got[i].Object != obj {
			t.Errorf("%s %d names %q, want %q", what, i, got[i].Object, obj)
		}
		for _, s := range w.contains {
			if !strings.Contains(got[i].Problem, s) {
				t.Errorf("%s %q does not contain %q", what, got[i].Problem, s)
			}
		}
	}
}

func checkIntact(t *testing.T, r *replicatest.Replica, rep Report, deep bool) {
	t.Helper()
	if len(rep.Generations) != 1 {
		t.Fatalf("generations = %+v", rep.Generations)
	}
	g := rep.Generations[0]
	last := r.Segments[len(r.Segments)-1].Last
	if rep.Objects != 7 || g.Exports != 2 || g.Segments != 4 || !g.Restorable || g.NewestRestorable != last || g.LastSeq != last {
		t.Errorf("report = %+v, generation %+v", rep, g)
	}
	var size int64
	for _, e := range r.Exports {
		size += e.Size
	}
	for _, s := range r.Segments {
		size += s.Size
	}
	if rep.Bytes != size {
		t.Errorf("bytes = %d, want %d", rep.Bytes, size)
	}
	if !deep {
		if len(g.Deep) != 0 {
			t.Errorf("deep results without Deep: %+v", g.Deep)
		}
		return
	}
	want := []DeepResult{
		{Base: r.Exports[0].Seq, Seq: r.Exports[1].Seq, Against: r.Exports[1].Key, OK: true, Batches: 8},
		{Base: r.Exports[1].Seq, Seq: last, OK: true, Batches: 8},
	}
	if len(g.Deep) != len(want) {
		t.Fatalf("deep = %+v, want %+v", g.Deep, want)
	}
	for i := range want {
		if g.Deep[i] != want[i] {
			t.Errorf("deep[%d] = %+v, want %+v", i, g.Deep[i], want[i])
		}
	}
}

// changeValue returns the batch with the last byte of its first put's
// value changed: still a valid WriteBatch, different content.
func changeValue(t *testing.T, data []byte) []byte {
	t.Helper()
	recs, err := wbatch.Records(data)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := wbatch.ReadHeader(data)
	b := wbatch.NewBuilder(h.Seq)
	for i, rec := range recs {
		if i == 0 {
			rec.Value = append([]byte(nil), rec.Value...)
			rec.Value[len(rec.Value)-1] ^= 1
		}
		b.Add(rec)
	}
	return b.Bytes()
}

// TestEmptyReplica: an empty prefix is a problem, not a pass.
func TestEmptyReplica(t *testing.T) {
	r := replicatest.Build(t, replicatest.Spec{Tx: 1})
	for _, k := range []string{layout.MetaKey(r.Generation), r.Exports[0].Key, r.Segments[0].Key} {
		r.Delete(t, k)
	}
	rep, err := Run(context.Background(), Options{Replica: r.R, Temp: t.TempDir()})
	if err != nil || rep.OK() || !strings.Contains(rep.Problems[0].Problem, "holds no generation") {
		t.Fatalf("report %+v, err %v: want a problem", rep, err)
	}
}

// TestProblemString: a problem names its object, else its generation.
func TestProblemString(t *testing.T) {
	for _, tc := range []struct {
		p    Problem
		want string
	}{
		{Problem{Generation: "g", Object: "k", Problem: "bad"}, "k: bad"},
		{Problem{Generation: "g", Problem: "bad"}, "generation g: bad"},
		{Problem{Problem: "bad"}, "bad"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
}
