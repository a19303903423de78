package layout

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/segment"
)

func objs(keys ...string) []Object {
	out := make([]Object, len(keys))
	for i, k := range keys {
		out[i] = Object{Key: k, Size: 1}
	}
	return out
}

// Two canonical generation ids, in sort order.
const (
	gen1 = "20261122T213000.000Z-3f9a1c"
	gen2 = "20261123T000000.001Z-000000"
)

func TestParse(t *testing.T) {
	gens, unknown := Parse(objs(
		SegmentKey(gen2, 11, 20), MetaKey(gen2), ExportKey(gen2, 10),
		MetaKey(gen1), ExportKey(gen1, 1), SegmentKey(gen1, 2, 5), SegmentKey(gen1, 6, 9), SegmentKey(gen1, 2, 3),
		"generations/"+gen1+"/exports/zz.texp", "other/file", "generations/"+gen1+"/segments/1-2.tseg", "generations/",
	))
	if len(gens) != 2 || gens[0].ID != gen1 || gens[1].ID != gen2 {
		t.Fatalf("generations = %+v", gens)
	}
	g1 := gens[0]
	if g1.MetaKey == "" || len(g1.Exports) != 1 || len(g1.Segments) != 3 {
		t.Fatalf("g1 = %+v", g1)
	}
	if g1.Segments[0].First != 2 || g1.Segments[0].Last != 3 || g1.Segments[1].Last != 5 {
		t.Fatalf("segments not sorted by (first, last): %+v", g1.Segments)
	}
	if len(unknown) != 4 {
		t.Fatalf("unknown = %v, want the 4 foreign keys", unknown)
	}
}

// TestParseRefusesUncanonicalKeys: Parse is the exact inverse of the key
// builders. Keys are untrusted and restore turns them into local paths,
// so every other spelling is "not a tailer object".
func TestParseRefusesUncanonicalKeys(t *testing.T) {
	seg := segment.SegmentName(1, 2)
	exp := segment.ExportName(1)
	hostile := []string{
		"generations/" + gen1 + "/segments/../../../../tmp/x/" + seg,
		"generations/" + gen1 + "/segments/x/../" + seg,
		"generations/" + gen1 + "/segments/./" + seg,
		"generations/" + gen1 + "/segments//" + seg,
		"generations/" + gen1 + "//segments/" + seg,
		"generations//" + gen1 + "/segments/" + seg,
		"generations/" + gen1 + "/segments/" + seg + "/",
		"generations/" + gen1 + "/segments\\..\\..\\" + seg,
		"generations/" + gen1 + "/exports/../exports/" + exp,
		"generations/" + gen1 + "/exports/sub/" + exp,
		"generations/" + gen1 + "/sub/" + MetaName,
		"generations/" + gen1 + "/" + MetaName + "/x",
		"generations/../" + gen1 + "/" + MetaName,
		"generations/../generation.json",
		"/generations/" + gen1 + "/" + MetaName,
		"./generations/" + gen1 + "/" + MetaName,
		"generations/./" + MetaName,
		"generations/" + MetaName,
		// generation ids NewGenerationID would not produce
		"generations/../segments/" + seg,
		"generations/g1/segments/" + seg,
		"generations/..%2f/" + MetaName,
		"generations/20261122T213000Z-3f9a1c/" + MetaName,     // no milliseconds
		"generations/20261122T213000.000Z-3F9A1C/" + MetaName, // upper-case hex
		"generations/20261322T213000.000Z-3f9a1c/" + MetaName, // month 13
		"generations/20261122T213000.000Z-3f9a1c0/" + MetaName,
		"generations/20261122T213000.000Z_3f9a1c/" + MetaName,
		// names SegmentName and ExportName would not produce
		"generations/" + gen1 + "/segments/" + strings.ToUpper(segment.SegmentName(10, 11)),
		"generations/" + gen1 + "/segments/" + segment.SegmentName(2, 1),
		"generations/" + gen1 + "/segments/" + exp,
		"generations/" + gen1 + "/exports/" + seg,
		"generations/" + gen1 + "/exports/" + exp + ".tmp",
	}
	for _, key := range hostile {
		gens, unknown := Parse(objs(key))
		if len(gens) != 0 || len(unknown) != 1 || unknown[0] != key {
			t.Errorf("Parse(%q) = %+v, unknown %v; want it unknown", key, gens, unknown)
		}
	}
}

// TestParseRoundTrip: every key the builders produce with an id from
// NewGenerationID parses back to what built it.
func TestParseRoundTrip(t *testing.T) {
	prev := ""
	for i, now := range []time.Time{time.Unix(0, 0), time.Date(2026, 11, 22, 21, 30, 0, 999_999_999, time.FixedZone("x", 3600)), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)} {
		id := NewGenerationID(now, prev)
		if err := ValidGenerationID(id); err != nil {
			t.Fatalf("NewGenerationID gave %q: %v", id, err)
		}
		for _, seqs := range [][2]uint64{{0, 0}, {1, 2}, {0xa1, 0xb0}, {1 << 63, 1<<64 - 1}} {
			gens, unknown := Parse(objs(MetaKey(id), ExportKey(id, seqs[0]), SegmentKey(id, seqs[0], seqs[1])))
			if len(unknown) != 0 || len(gens) != 1 {
				t.Fatalf("case %d %v: gens %+v unknown %v", i, seqs, gens, unknown)
			}
			g := gens[0]
			if g.ID != id || g.MetaKey != MetaKey(id) || len(g.Exports) != 1 || g.Exports[0].Seq != seqs[0] ||
				len(g.Segments) != 1 || g.Segments[0].First != seqs[0] || g.Segments[0].Last != seqs[1] {
				t.Fatalf("case %d %v: parsed %+v", i, seqs, g)
			}
		}
		prev = id
	}
}

func TestChainAndRestorable(t *testing.T) {
	seg := func(first, last uint64) Segment {
		return Segment{Object: Object{Key: SegmentKey("g", first, last)}, First: first, Last: last}
	}
	tests := []struct {
		name       string
		exports    []uint64
		segs       []Segment
		from, to   uint64
		wantChain  []uint64 // Last of each chosen segment
		wantErr    string
		restorable uint64
	}{
		{"contiguous", []uint64{10}, []Segment{seg(11, 20), seg(21, 30)}, 10, 30, []uint64{20, 30}, "", 30},
		{"stop inside a segment", []uint64{10}, []Segment{seg(11, 20), seg(21, 30)}, 10, 25, []uint64{20, 30}, "", 30},
		{"export mid-segment", []uint64{10, 15}, []Segment{seg(11, 20), seg(21, 30)}, 15, 30, []uint64{20, 30}, "", 30},
		{"prefers the widest overlap", []uint64{10}, []Segment{seg(11, 20), seg(11, 40), seg(21, 30)}, 10, 40, []uint64{40}, "", 40},
		{"hole", []uint64{10}, []Segment{seg(11, 20), seg(25, 30)}, 10, 30, nil, "hole", 20},
		{"later export bridges a hole", []uint64{10, 24}, []Segment{seg(11, 20), seg(25, 30)}, 24, 30, []uint64{30}, "", 30},
		{"nothing to replay", []uint64{10}, nil, 10, 10, nil, "", 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := Generation{ID: "g", Segments: tc.segs}
			for _, e := range tc.exports {
				g.Exports = append(g.Exports, Export{Seq: e})
			}
			chain, err := g.Chain(tc.from, tc.to)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				var lasts []uint64
				for _, s := range chain {
					lasts = append(lasts, s.Last)
				}
				if len(lasts) != len(tc.wantChain) {
					t.Fatalf("chain lasts = %v, want %v", lasts, tc.wantChain)
				}
				for i := range lasts {
					if lasts[i] != tc.wantChain[i] {
						t.Fatalf("chain lasts = %v, want %v", lasts, tc.wantChain)
					}
				}
			}
			if got, ok := g.NewestRestorable(); !ok || got != tc.restorable {
				t.Fatalf("NewestRestorable = %d, %v; want %d", got, ok, tc.restorable)
			}
		})
	}
	if _, ok := (Generation{}).NewestRestorable(); ok {
		t.Fatal("a generation without export claims to be restorable")
	}
}

func TestMetaRoundTripAndVersion(t *testing.T) {
	now := time.Date(2026, 11, 22, 21, 30, 0, 0, time.UTC)
	m := Meta{ID: NewGenerationID(now, ""), Reason: "test", BaseSeq: 7}
	if !strings.HasPrefix(m.ID, "20261122T213000.000Z-") || len(m.ID) != len("20261122T213000.000Z-3f9a1c") {
		t.Fatalf("generation id %q does not sort by time", m.ID)
	}
	// Ids made in the same millisecond, or after a clock step back, still sort.
	prev := m.ID
	for i, at := range []time.Time{now, now, now.Add(-time.Hour), now.Add(time.Second)} {
		id := NewGenerationID(at, prev)
		if id <= prev {
			t.Fatalf("id %d: %q does not sort after %q", i, id, prev)
		}
		prev = id
	}
	raw, err := EncodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMeta("k", raw)
	if err != nil || got.ID != m.ID || got.BaseSeq != 7 || got.Format != FormatVersion {
		t.Fatalf("DecodeMeta = %+v, %v", got, err)
	}
	if _, err := DecodeMeta("k", []byte(`{"id":"x","format_version":99}`)); !errors.Is(err, ErrFutureFormat) || !strings.Contains(err.Error(), "upgrade tailer") {
		t.Fatalf("future version: %v", err)
	}
	if _, err := DecodeMeta("k", []byte(`not json`)); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestHoles(t *testing.T) {
	seg := func(first, last uint64) Segment {
		return Segment{Object: Object{Key: SegmentKey("g", first, last)}, First: first, Last: last}
	}
	type hole struct {
		first, last uint64
		bridged     bool
	}
	tests := []struct {
		name    string
		exports []uint64
		segs    []Segment
		want    []hole
		reach10 uint64 // Reach(10)
	}{
		{"contiguous", []uint64{10}, []Segment{seg(11, 20), seg(21, 30)}, nil, 30},
		{"overlapping", []uint64{10}, []Segment{seg(11, 20), seg(15, 25), seg(26, 30)}, nil, 30},
		{"segments before the export", []uint64{10}, []Segment{seg(1, 5), seg(6, 12), seg(13, 14)}, nil, 14},
		{"one hole", []uint64{10}, []Segment{seg(11, 20), seg(25, 30)}, []hole{{21, 24, false}}, 20},
		{"two holes", []uint64{10}, []Segment{seg(12, 20), seg(25, 30)}, []hole{{11, 11, false}, {21, 24, false}}, 10},
		{"bridged by a later export", []uint64{10, 24}, []Segment{seg(11, 20), seg(25, 30)}, []hole{{21, 24, true}}, 20},
		{"export beyond every segment", []uint64{10, 40}, []Segment{seg(11, 20)}, []hole{{21, 40, true}}, 20},
		{"no segment", []uint64{10}, nil, nil, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := Generation{ID: "g", Segments: tc.segs}
			for _, e := range tc.exports {
				g.Exports = append(g.Exports, Export{Object: Object{Key: ExportKey("g", e)}, Seq: e})
			}
			var got []hole
			for _, h := range g.Holes() {
				got = append(got, hole{h.First, h.Last, h.Bridged})
				if h.Before == "" {
					t.Errorf("hole %d..%d names no object before it", h.First, h.Last)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("holes = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("holes = %v, want %v", got, tc.want)
				}
			}
			if r := g.Reach(10); r != tc.reach10 {
				t.Fatalf("Reach(10) = %d, want %d", r, tc.reach10)
			}
		})
	}
}

// FuzzDecodeMeta: no generation.json, however damaged, panics the decoder;
// what it accepts has an id and a format this tailer reads, and survives a
// round trip.
func FuzzDecodeMeta(f *testing.F) {
	good, err := EncodeMeta(Meta{ID: "20261122T213000.000Z-3f9a1c", Reason: "first run", BaseSeq: 7,
		Families: []segment.Family{{ID: 0, Name: "default"}, {ID: 3, Name: "n", MergeOperator: "merge"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"id":"x","format_version":2}`))
	f.Add([]byte(`{"id":"x","format_version":-1,"created":"not a time"}`))
	f.Add([]byte(`{"id":"","families":[{"id":4294967296}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := DecodeMeta("fuzz", raw)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz") {
				t.Fatalf("error does not name the object: %v", err)
			}
			return
		}
		if m.ID == "" || m.Format > FormatVersion {
			t.Fatalf("accepted %+v", m)
		}
		again, err := EncodeMeta(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodeMeta("fuzz", again); err != nil {
			t.Fatalf("round trip of an accepted meta fails: %v", err)
		}
	})
}

func TestCoverage(t *testing.T) {
	seg := func(first, last uint64) Segment {
		return Segment{Object: Object{Key: SegmentKey("g", first, last)}, First: first, Last: last}
	}
	tests := []struct {
		name      string
		segs      []Segment
		uncovered [][2]uint64
		inside    map[[2]uint64][][2]uint64
	}{
		{"none", nil, nil, nil},
		{"disjoint", []Segment{seg(1, 5), seg(6, 9)}, [][2]uint64{{1, 5}, {6, 9}}, nil},
		{"wide over narrow", []Segment{seg(1, 5), seg(6, 9), seg(1, 9), seg(10, 12)},
			[][2]uint64{{1, 9}, {10, 12}}, map[[2]uint64][][2]uint64{{1, 9}: {{1, 5}, {6, 9}}}},
		{"two levels nest in the widest", []Segment{seg(1, 2), seg(3, 4), seg(1, 4), seg(5, 8), seg(1, 8)},
			[][2]uint64{{1, 8}}, map[[2]uint64][][2]uint64{{1, 8}: {{1, 2}, {1, 4}, {3, 4}, {5, 8}}}},
		{"same first, wider wins", []Segment{seg(1, 3), seg(1, 7)},
			[][2]uint64{{1, 7}}, map[[2]uint64][][2]uint64{{1, 7}: {{1, 3}}}},
		{"partial overlap is not nesting", []Segment{seg(1, 5), seg(4, 9)}, [][2]uint64{{1, 5}, {4, 9}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Generation{ID: "g", Segments: tc.segs}.Coverage()
			var got [][2]uint64
			for _, s := range c.Uncovered {
				got = append(got, [2]uint64{s.First, s.Last})
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.uncovered) {
				t.Errorf("uncovered = %v, want %v", got, tc.uncovered)
			}
			gotIn := map[[2]uint64][][2]uint64{}
			for k, in := range c.Inside {
				_, name, _ := strings.Cut(k, "/segments/")
				first, last, err := segment.ParseSegmentName(name)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range in {
					gotIn[[2]uint64{first, last}] = append(gotIn[[2]uint64{first, last}], [2]uint64{s.First, s.Last})
				}
			}
			if len(tc.inside) == 0 && len(gotIn) == 0 {
				return
			}
			if fmt.Sprint(gotIn) != fmt.Sprint(tc.inside) {
				t.Errorf("inside = %v, want %v", gotIn, tc.inside)
			}
		})
	}
}
