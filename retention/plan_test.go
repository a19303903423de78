package retention

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
)

var day0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func day(n float64) time.Time { return day0.Add(time.Duration(n * float64(24*time.Hour))) }

// short names keys in expectations: "g1/e10", "g1/s11-30", "g1/meta".
func short(key string) string {
	rest := strings.TrimPrefix(key, layout.Root)
	gen, name, _ := strings.Cut(rest, "/")
	switch {
	case name == layout.MetaName:
		return gen + "/meta"
	case strings.HasPrefix(name, "exports/"):
		var seq uint64
		fmt.Sscanf(strings.TrimPrefix(name, "exports/"), "%x", &seq)
		return fmt.Sprintf("%s/e%d", gen, seq)
	default:
		var a, b uint64
		fmt.Sscanf(strings.TrimPrefix(name, "segments/"), "%x-%x", &a, &b)
		return fmt.Sprintf("%s/s%d-%d", gen, a, b)
	}
}

type exp struct {
	seq uint64
	at  time.Time
}

func gen(id string, exports []exp, segs ...[2]uint64) (layout.Generation, map[string]time.Time) {
	g := layout.Generation{ID: id, MetaKey: layout.MetaKey(id)}
	times := map[string]time.Time{}
	for _, e := range exports {
		k := layout.ExportKey(id, e.seq)
		g.Exports = append(g.Exports, layout.Export{Object: layout.Object{Key: k, Size: 1000}, Seq: e.seq})
		times[k] = e.at
	}
	for _, s := range segs {
		g.Segments = append(g.Segments, layout.Segment{Object: layout.Object{Key: layout.SegmentKey(id, s[0], s[1]), Size: 10}, First: s[0], Last: s[1]})
	}
	return g, times
}

// allGood says every export verifies.
func allGood(layout.Generation, layout.Export) bool { return true }

func TestDecide(t *testing.T) {
	// g0: a generation whose base export never finished.
	// g1: exports at 10 (day 1) and 50 (day 2); the segment 31..60 straddles 50.
	// g2: export at 5 (day 3), segments after it, and a wide segment
	//     (compaction) beside the narrow ones it replaced.
	// g3: the generation `run` just started: no export yet.
	g0, _ := gen("g0", nil, [2]uint64{1, 4})
	g1, t1 := gen("g1", []exp{{10, day(1)}, {50, day(2)}}, [2]uint64{11, 30}, [2]uint64{31, 60}, [2]uint64{61, 80})
	g2, t2 := gen("g2", []exp{{5, day(3)}}, [2]uint64{6, 20}, [2]uint64{6, 9}, [2]uint64{10, 20}, [2]uint64{21, 25})
	g3, _ := gen("g3", nil)
	times := map[string]time.Time{}
	for k, v := range t1 {
		times[k] = v
	}
	for k, v := range t2 {
		times[k] = v
	}
	all := []layout.Generation{g0, g1, g2, g3}
	wholeG1 := []string{"g1/e10", "g1/e50", "g1/s11-30", "g1/s31-60", "g1/s61-80", "g1/meta"}
	g0gone := []string{"g0/s1-4", "g0/meta"}

	tests := []struct {
		name     string
		gens     []layout.Generation
		policy   Policy
		now      time.Time
		deleted  []string
		oldest   string // gen/eSEQ of the oldest kept export
		whyMatch string
	}{
		{"newest export only", all, Policy{KeepExports: 1}, day(4), append(append([]string{}, g0gone...), wholeG1...), "g2/e5", "the newest export"},
		{"two exports keep the straddling segment", all, Policy{KeepExports: 2}, day(4),
			append(append([]string{}, g0gone...), "g1/e10", "g1/s11-30"), "g1/e50", "2 newest"},
		{"more exports than exist", all, Policy{KeepExports: 10}, day(4), g0gone, "g1/e10", "10 newest"},
		{"age window reaches back before day 1: everything kept", all, Policy{MaxAge: 4 * 24 * time.Hour}, day(4),
			g0gone, "g1/e10", "younger than"},
		{"window starts between day 1 and 2: the day-1 export is its base", all, Policy{MaxAge: 60 * time.Hour}, day(4),
			g0gone, "g1/e10", "at or before"},
		{"window starts between day 2 and 3", all, Policy{MaxAge: 36 * time.Hour}, day(4),
			append(append([]string{}, g0gone...), "g1/e10", "g1/s11-30"), "g1/e50", "at or before"},
		{"window after every export: the newest chain stays", all, Policy{MaxAge: time.Hour}, day(4),
			append(append([]string{}, g0gone...), wholeG1...), "g2/e5", "the newest export"},
		{"both rules: the one keeping more wins", all, Policy{MaxAge: time.Hour, KeepExports: 3}, day(4), g0gone, "g1/e10", "3 newest"},
		{"an export taken exactly at the cutoff is the base", all, Policy{MaxAge: 2 * 24 * time.Hour}, day(4),
			append(append([]string{}, g0gone...), "g1/e10", "g1/s11-30"), "g1/e50", "at or before"},
		{"nothing restorable yet: nothing deleted", []layout.Generation{g0, g3}, Policy{KeepExports: 1}, day(4), nil, "", ""},
		{"the newest generation has no export yet: the previous chain is the newest", []layout.Generation{g1, g3},
			Policy{KeepExports: 1}, day(4), []string{"g1/e10", "g1/s11-30"}, "g1/e50", "newest"},
		{"narrow and wide segments before the base go, the one reaching past it stays",
			[]layout.Generation{func() layout.Generation {
				g, _ := gen("g2", []exp{{5, day(3)}, {15, day(3.5)}}, [2]uint64{6, 20}, [2]uint64{6, 9}, [2]uint64{10, 12}, [2]uint64{13, 15}, [2]uint64{16, 20})
				return g
			}()},
			Policy{KeepExports: 1}, day(4), []string{"g2/e5", "g2/s6-9", "g2/s10-12", "g2/s13-15"}, "g2/e15", "newest"},
	}
	tm := map[string]time.Time{layout.ExportKey("g2", 15): day(3.5)}
	for k, v := range times {
		tm[k] = v
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := decide(tc.gens, tm, allGood, tc.policy, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range pl.deletions {
				got = append(got, short(d.Key))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.deleted) {
				t.Errorf("deleted\n got %v\nwant %v", got, tc.deleted)
			}
			if tc.oldest == "" {
				if pl.oldest.Generation != "" {
					t.Errorf("oldest = %+v, want none", pl.oldest)
				}
				return
			}
			if o := fmt.Sprintf("%s/e%d", pl.oldest.Generation, pl.oldest.ExportSeq); o != tc.oldest {
				t.Errorf("oldest kept = %s, want %s", o, tc.oldest)
			}
			if !strings.Contains(pl.oldest.Why, tc.whyMatch) {
				t.Errorf("why = %q, want it to mention %q", pl.oldest.Why, tc.whyMatch)
			}
		})
	}
}

// TestDecideOrder checks the order deletions are made in: within a
// generation exports first, then segments by sequence, generation.json
// last; generations oldest first.
func TestDecideOrder(t *testing.T) {
	g1, t1 := gen("g1", []exp{{10, day(1)}}, [2]uint64{11, 20}, [2]uint64{21, 30})
	g2, t2 := gen("g2", []exp{{10, day(2)}}, [2]uint64{11, 20})
	g3, t3 := gen("g3", []exp{{10, day(3)}})
	times := map[string]time.Time{}
	for _, m := range []map[string]time.Time{t1, t2, t3} {
		for k, v := range m {
			times[k] = v
		}
	}
	pl, err := decide([]layout.Generation{g1, g2, g3}, times, allGood, Policy{KeepExports: 1}, day(4))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range pl.deletions {
		got = append(got, short(d.Key)+":"+string(d.Kind))
	}
	want := "[g1/e10:export g1/s11-20:segment g1/s21-30:segment g1/meta:generation.json g2/e10:export g2/s11-20:segment g2/meta:generation.json]"
	if fmt.Sprint(got) != want {
		t.Errorf("order\n got %v\nwant %s", got, want)
	}
	if pl.keptObjects != 2 || pl.keptBytes != 1000 {
		t.Errorf("kept %d objects, %d bytes; want 2 (export and generation.json), 1000", pl.keptObjects, pl.keptBytes)
	}
}

func TestProveCatchesABrokenChain(t *testing.T) {
	g, _ := gen("g", []exp{{10, day(1)}}, [2]uint64{11, 20}, [2]uint64{21, 30})
	kept := []exportRef{{0, g.Exports[0]}}
	if err := prove([]layout.Generation{g}, kept, map[string]bool{layout.SegmentKey("g", 21, 30): true}); err == nil || !strings.Contains(err.Error(), "shorten the chain") {
		t.Fatalf("deleting a needed segment: err = %v", err)
	}
	if err := prove([]layout.Generation{g}, kept, map[string]bool{g.MetaKey: true}); err == nil {
		t.Fatal("deleting a kept generation.json was not caught")
	}
	if err := prove([]layout.Generation{g}, kept, map[string]bool{g.Exports[0].Key: true}); err == nil {
		t.Fatal("deleting the kept export was not caught")
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Policy
		ok bool
	}{
		{Policy{}, false}, {Policy{MaxAge: -time.Hour}, false}, {Policy{KeepExports: -1}, false},
		{Policy{MaxAge: time.Hour}, true}, {Policy{KeepExports: 1}, true},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: err = %v", tc.p, err)
		}
	}
}

// TestDecideUnverified: exports that do not verify are not counted by any
// rule, are never deleted for it, and are asked about lazily (verifying
// reads a whole export).
func TestDecideUnverified(t *testing.T) {
	// g1: exports at 10 (day 1) and 50 (day 2); g2: exports at 5 (day 3)
	// and 25 (day 3.5).
	g1, t1 := gen("g1", []exp{{10, day(1)}, {50, day(2)}}, [2]uint64{11, 30}, [2]uint64{31, 60}, [2]uint64{61, 80})
	g2, t2 := gen("g2", []exp{{5, day(3)}, {25, day(3.5)}}, [2]uint64{6, 20}, [2]uint64{21, 30})
	times := map[string]time.Time{}
	for _, m := range []map[string]time.Time{t1, t2} {
		for k, v := range m {
			times[k] = v
		}
	}
	gens := []layout.Generation{g1, g2}
	wholeG1 := []string{"g1/e10", "g1/e50", "g1/s11-30", "g1/s31-60", "g1/s61-80", "g1/meta"}
	tests := []struct {
		name    string
		bad     []string // exports that do not verify
		policy  Policy
		deleted []string
		oldest  string // "" when nothing verifies
		why     string
		asked   string // the exports verified, in order ("" = not checked)
	}{
		{"no damage: only the newest export is verified", nil, Policy{KeepExports: 1}, append(append([]string{}, wholeG1...), "g2/e5", "g2/s6-20"), "g2/e25", "newest export that verifies",
			"[g2/e25]"},
		{"no damage, by age: the newest and the window's base", nil, Policy{MaxAge: 30 * time.Hour}, []string{"g1/e10", "g1/s11-30"}, "g1/e50", "at or before",
			"[g2/e25 g1/e50]"},
		{"the newest export is corrupt: the one before it and its chain stay", []string{"g2/e25"}, Policy{KeepExports: 1},
			wholeG1, "g2/e5", "1 newer export(s) that do not verify", "[g2/e25 g2/e5]"},
		{"the newest generation's exports are all corrupt: the previous chain stays", []string{"g2/e25", "g2/e5"}, Policy{KeepExports: 1},
			[]string{"g1/e10", "g1/s11-30"}, "g1/e50", "2 newer export(s)", "[g2/e25 g2/e5 g1/e50]"},
		{"two exports that verify", []string{"g2/e25"}, Policy{KeepExports: 2},
			[]string{"g1/e10", "g1/s11-30"}, "g1/e50", "2 newest exports that verify", "[g2/e25 g2/e5 g1/e50]"},
		{"a damaged export older than the kept ones goes with its generation", []string{"g1/e50"}, Policy{KeepExports: 2},
			wholeG1, "g2/e5", "2 newest exports that verify", "[g2/e25 g2/e5]"},
		{"three that verify skip the damaged one", []string{"g1/e50"}, Policy{KeepExports: 3},
			nil, "g1/e10", "3 newest exports that verify are kept; 1 newer", "[g2/e25 g2/e5 g1/e50 g1/e10]"},
		{"fewer verify than asked for: all stay", []string{"g2/e5"}, Policy{KeepExports: 4},
			nil, "g1/e10", "fewer than 4 verify", "[g2/e25 g2/e5 g1/e50 g1/e10]"},
		{"the window's base is corrupt: the export before it is the base", []string{"g1/e50"}, Policy{MaxAge: 30 * time.Hour},
			nil, "g1/e10", "verifies taken at or before", "[g2/e25 g1/e50 g1/e10]"},
		{"nothing at or before the window's start verifies: all stay", []string{"g1/e50", "g1/e10"}, Policy{MaxAge: 30 * time.Hour},
			nil, "g1/e10", "no export taken at or before", "[g2/e25 g1/e50 g1/e10]"},
		{"only the oldest verifies: the damaged newer ones stay", []string{"g2/e25", "g2/e5", "g1/e50"}, Policy{KeepExports: 1},
			nil, "g1/e10", "3 newer", "[g2/e25 g2/e5 g1/e50 g1/e10]"},
		{"nothing verifies: nothing is deleted", []string{"g2/e25", "g2/e5", "g1/e50", "g1/e10"}, Policy{KeepExports: 1},
			nil, "", "", "[g2/e25 g2/e5 g1/e50 g1/e10]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			ok := func(g layout.Generation, e layout.Export) bool {
				k := short(e.Key)
				if !strings.HasPrefix(k, g.ID+"/") {
					t.Errorf("asked about %s as part of %s", k, g.ID)
				}
				asked = append(asked, k)
				for _, b := range tc.bad {
					if b == k {
						return false
					}
				}
				return true
			}
			pl, err := decide(gens, times, ok, tc.policy, day(4))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range pl.deletions {
				got = append(got, short(d.Key))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.deleted) {
				t.Errorf("deleted\n got %v\nwant %v", got, tc.deleted)
			}
			if fmt.Sprint(asked) != tc.asked {
				t.Errorf("verified %v, want %s", asked, tc.asked)
			}
			if tc.oldest == "" {
				if !pl.noneVerifies || pl.oldest.Generation != "" {
					t.Errorf("nothing verifies: noneVerifies = %v, oldest = %+v", pl.noneVerifies, pl.oldest)
				}
				return
			}
			if pl.noneVerifies {
				t.Error("noneVerifies set although an export verifies")
			}
			if o := fmt.Sprintf("%s/e%d", pl.oldest.Generation, pl.oldest.ExportSeq); o != tc.oldest {
				t.Errorf("oldest kept = %s, want %s", o, tc.oldest)
			}
			if !strings.Contains(pl.oldest.Why, tc.why) {
				t.Errorf("why = %q, want it to mention %q", pl.oldest.Why, tc.why)
			}
		})
	}
}
