package flaglimit

import (
	"strconv"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tailer-backup/tailer/internal/config"
)

// TestRuleMessages pins the message shapes.
func TestRuleMessages(t *testing.T) {
	for _, c := range []struct {
		r        Rule
		duration bool
		want     string
	}{
		{Positive("1s"), true, "must be > 0 (e.g. 1s)"},
		{NonNegative(""), false, "must be >= 0"},
		{AtLeast(3, "4"), false, "must be >= 3 (e.g. 4)"},
		{AtLeast(int64(1500e6), "30s").OrNegative("no lease"), true, "must be >= 1.5s, or negative for no lease (e.g. 30s)"},
	} {
		if got := c.r.Want(c.duration); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
}

// TestCheck: each kind of flag a rule reads, where its value came from,
// and a parsed string flag.
func TestCheck(t *testing.T) {
	count := Parser{Name: "count", Parse: func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }}
	for _, c := range []struct {
		args     []string
		settings map[string]config.Setting
		parsers  []Parser
		want     string // "" passes
	}{
		{nil, nil, []Parser{count}, ""},
		{[]string{"--ttl", "-1s", "--levels", "1s,1h", "--n", "0"}, nil, []Parser{count}, ""},
		{[]string{"--ttl", "100ms"}, nil, []Parser{count}, "--ttl 100ms: must be >= 500ms, or negative for no lease (e.g. 30s)"},
		{[]string{"--levels", "1s,500ms"}, nil, []Parser{count}, "--levels [1s,500ms]: must be >= 1s (e.g. 1m)"},
		{[]string{"--n", "-1"}, nil, []Parser{count}, "--n -1: must be >= 0"},
		{[]string{"--s", "0"}, nil, []Parser{count}, "--s 0: must be > 0 (e.g. 5)"},
		{[]string{"--s", "x"}, nil, []Parser{count}, `--s x: strconv.ParseInt: parsing "x": invalid syntax`},
		{[]string{"--s", "3"}, nil, nil, "--s 3: no count parser to check it with"},
		{[]string{"--n", "-1"}, map[string]config.Setting{"n": {Source: config.FromFile, Where: "f.yaml:2 (n)"}}, nil, "--n -1 (from f.yaml:2 (n)): must be >= 0"},
		{[]string{"--n", "-1"}, map[string]config.Setting{"n": {Source: config.FromEnv, Where: "TAILER_N", Hidden: true}}, nil, "--n (from TAILER_N, value not shown): must be >= 0"},
	} {
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		fs.Duration("ttl", 30*time.Second, "")
		fs.DurationSlice("levels", []time.Duration{time.Minute}, "")
		fs.Int("n", 0, "")
		fs.String("s", "", "")
		Set(fs, "ttl", AtLeast(500*time.Millisecond, "30s").OrNegative("no lease"))
		Set(fs, "levels", AtLeast(time.Second, "1m"))
		Set(fs, "n", NonNegative(""))
		Set(fs, "s", Positive("5").ParsedBy(count))
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		err := Check(fs, c.settings, c.parsers...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// TestSetMisuse: a rule on a missing flag or on a type it cannot read is
// a programming error, caught when the command is built.
func TestSetMisuse(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("s", "", "")
	fs.Int("n", 0, "")
	for name, f := range map[string]func(){
		"missing flag":           func() { Set(fs, "nope", Positive("")) },
		"string without parser":  func() { Set(fs, "s", Positive("")) },
		"parser on a non-string": func() { Set(fs, "n", Positive("").ParsedBy(Parser{Name: "p"})) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
