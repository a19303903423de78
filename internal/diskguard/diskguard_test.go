package diskguard

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Threshold
		bad  bool
	}{
		{in: "5%", want: Threshold{Percent: 5}},
		{in: " 0.5 % ", want: Threshold{Percent: 0.5}},
		{in: "100%", want: Threshold{Percent: 100}},
		{in: "0", want: Threshold{}},
		{in: "0%", want: Threshold{}},
		{in: "2GiB", want: Threshold{Bytes: 2 << 30}},
		{in: "2gib", want: Threshold{Bytes: 2 << 30}},
		{in: "500MB", want: Threshold{Bytes: 500e6}},
		{in: "1.5G", want: Threshold{Bytes: 3 << 29}},
		{in: "64 KiB", want: Threshold{Bytes: 64 << 10}},
		{in: "1073741824", want: Threshold{Bytes: 1 << 30}},
		{in: "10B", want: Threshold{Bytes: 10}},
		{in: "-1%", bad: true},
		{in: "100.1%", bad: true},
		{in: "250%", bad: true},
		{in: "-2GiB", bad: true},
		{in: "abc", bad: true},
		{in: "5 parsecs", bad: true},
		{in: "", bad: true},
		{in: "%", bad: true},
		{in: "1e30TB", bad: true},
	} {
		got, err := Parse(c.in)
		if c.bad {
			if !errors.Is(err, ErrThreshold) {
				t.Errorf("Parse(%q) = %+v, %v; want ErrThreshold", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if back, err := Parse(got.String()); err != nil || back != got {
			t.Errorf("Parse(%q.String() = %q) = %+v, %v", c.in, got.String(), back, err)
		}
	}
}

// TestGuardHysteresis: the guard trips below the threshold on any path,
// stays tripped until every path has the threshold plus 1% again, and is
// never active when disabled.
func TestGuardHysteresis(t *testing.T) {
	const total = 1000_000
	free := map[string]uint64{"/db": 500_000, "/spool": 500_000}
	fn := func(p string) (Space, error) { return Space{Free: free[p], Total: total}, nil }
	g := New(Threshold{Percent: 5}, fn, "/db", "/spool", "/db")
	for i, step := range []struct {
		db, spool       uint64
		active, changed bool
		path            string
	}{
		{db: 500_000, spool: 500_000},
		{db: 50_000, spool: 500_000},                                           // exactly 5%: not below
		{db: 49_999, spool: 500_000, active: true, changed: true, path: "/db"}, // below
		{db: 55_000, spool: 500_000, active: true, path: "/db"},                // above 5%, below 6%
		{db: 60_000, spool: 40_000, active: true, path: "/spool"},
		{db: 60_000, spool: 60_000, changed: true}, // both at 6%
		{db: 60_000, spool: 10_000, active: true, changed: true, path: "/spool"},
	} {
		free["/db"], free["/spool"] = step.db, step.spool
		active, changed, r, err := g.Check()
		if err != nil || active != step.active || changed != step.changed || (step.active && r.Path != step.path) {
			t.Fatalf("step %d (db %d, spool %d): active %v changed %v at %s (%v); want %v %v at %s",
				i, step.db, step.spool, active, changed, r.Path, err, step.active, step.changed, step.path)
		}
	}
	off := New(Threshold{}, fn, "/db")
	free["/db"] = 0
	if active, _, _, err := off.Check(); active || err != nil {
		t.Fatalf("disabled guard: active %v, %v", active, err)
	}
	broken := New(Threshold{Bytes: 1}, func(string) (Space, error) { return Space{}, errors.New("EIO") }, "/db")
	if active, _, _, err := broken.Check(); active || err == nil {
		t.Fatalf("unmeasurable path: active %v, err %v; want inactive and an error", active, err)
	}
}

func TestStatfs(t *testing.T) {
	sp, err := Statfs(t.TempDir())
	if err != nil {
		t.Skipf("statfs: %v", err)
	}
	if sp.Total == 0 || sp.Free > sp.Total {
		t.Fatalf("Statfs = %+v", sp)
	}
}
