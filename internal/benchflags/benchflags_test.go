package benchflags

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "64MiB": 64 << 20, "512M": 512 << 20, "4k": 4 << 10, "1000": 1000, "1.5G": 3 << 29} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1G", "0"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

// TestArgs: the arguments Args renders parse back to the same values, and
// only the flags that were set are rendered.
func TestArgs(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--quick"},
		{"--only", "tailing", "--only", "stores", "--size", "1GiB", "--rate", "5", "--poll", "250ms", "--work", "/tmp/a b", "--keep", "--json"},
		{"--lag-duration", "1m30s", "--idle-duration", "2s", "--overhead-duration", "3s", "--overhead-rounds", "2", "--quick=false"},
		{"--baseline-rev", "main"},
		{"--only", "lag", "--lag-rounds", "3", "--baseline", "/tmp/tailer base", "--candidate-args", "--max-delay 250ms --min-put-interval 1s",
			"--sweep", "--max-delay 100ms;--max-delay 250ms --min-put-interval 1s"},
	} {
		a := pflag.NewFlagSet("a", pflag.ContinueOnError)
		va := Define(a)
		if err := a.Parse(args); err != nil {
			t.Fatal(err)
		}
		rendered := Args(a)
		b := pflag.NewFlagSet("b", pflag.ContinueOnError)
		vb := Define(b)
		if err := b.Parse(rendered); err != nil {
			t.Fatalf("%v → %v: %v", args, rendered, err)
		}
		if !reflect.DeepEqual(va, vb) {
			t.Errorf("%v → %v:\n got %+v\nwant %+v", args, rendered, vb, va)
		}
		a.VisitAll(func(fl *pflag.Flag) {
			if fl.Changed != b.Lookup(fl.Name).Changed {
				t.Errorf("%v → %v: --%s set %v, then %v", args, rendered, fl.Name, fl.Changed, b.Lookup(fl.Name).Changed)
			}
		})
	}
}

// TestParseSweep: settings split at ';', each at spaces; an empty setting
// or one not starting with a flag is an error naming it.
func TestParseSweep(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    [][]string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "--max-delay 100ms", want: [][]string{{"--max-delay", "100ms"}}},
		{in: " --max-delay 100ms ;--max-delay 250ms  --min-put-interval 1s", want: [][]string{{"--max-delay", "100ms"}, {"--max-delay", "250ms", "--min-put-interval", "1s"}}},
		{in: "--max-delay=1s;--poll=2s", want: [][]string{{"--max-delay=1s"}, {"--poll=2s"}}},
		{in: "--a 1;", wantErr: "setting 2 is empty"},
		{in: "--a 1;;--b 2", wantErr: "setting 2 is empty"},
		{in: "max-delay 1s", wantErr: `setting 1 "max-delay 1s": starts with "max-delay", not a flag`},
	} {
		got, err := ParseSweep(c.in)
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseSweep(%q): error %v, want %q", c.in, err, c.wantErr)
			}
		case err != nil || !reflect.DeepEqual(got, c.want):
			t.Errorf("ParseSweep(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
