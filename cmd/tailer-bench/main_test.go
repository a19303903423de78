package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tailer-backup/tailer/bench"
	"github.com/tailer-backup/tailer/internal/benchflags"
	"github.com/tailer-backup/tailer/internal/flaglimit"
)

// parse parses args as the benchmark's flags and returns the options.
func parse(t *testing.T, args ...string) (bench.Options, error) {
	t.Helper()
	f := pflag.NewFlagSet("tailer-bench", pflag.ContinueOnError)
	v := benchflags.Define(f)
	if err := f.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return options(f, v)
}

// TestOptions: --quick or the defaults, with each flag set applied over
// them, and "(custom)" in the mode once a measured setting is changed.
func TestOptions(t *testing.T) {
	quick, def := bench.Quick(), bench.Defaults()
	for _, c := range []struct {
		args []string
		want func(*bench.Options)
	}{
		{nil, func(o *bench.Options) { *o = def }},
		{[]string{"--quick", "--json", "--keep", "--work", "/w"}, func(o *bench.Options) { *o = quick; o.Keep, o.Work = true, "/w" }},
		{[]string{"--quick", "--size", "2MiB", "--rate", "5"}, func(o *bench.Options) {
			*o = quick
			o.Size, o.Rate, o.Mode = 2<<20, 5, "quick (custom)"
		}},
		{[]string{"--baseline-rev", "main", "--baseline", ""}, func(o *bench.Options) { *o = def; o.BaselineRev = "main" }},
		{[]string{"--only", "lag", "--lag-rounds", "3", "--candidate-args", " --max-delay 250ms  --min-put-interval 1s",
			"--sweep", "--max-delay 100ms; --max-delay 250ms --min-put-interval 1s"}, func(o *bench.Options) {
			*o = def
			o.Only, o.LagRounds, o.Mode = []string{"lag"}, 3, "default (custom)"
			o.CandidateArgs = []string{"--max-delay", "250ms", "--min-put-interval", "1s"}
			o.Sweep = [][]string{{"--max-delay", "100ms"}, {"--max-delay", "250ms", "--min-put-interval", "1s"}}
		}},
		{[]string{"--only", "tailing,stores", "--poll", "250ms", "--lag-duration", "1s", "--idle-duration", "2s",
			"--overhead-duration", "3s", "--overhead-rounds", "4"}, func(o *bench.Options) {
			*o = def
			o.Only, o.Poll, o.Mode = []string{"tailing", "stores"}, 250*time.Millisecond, "default (custom)"
			o.LagDuration, o.IdleDuration, o.OverheadDuration, o.OverheadRounds = time.Second, 2*time.Second, 3*time.Second, 4
		}},
	} {
		got, err := parse(t, c.args...)
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		var want bench.Options
		c.want(&want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v:\n got %+v\nwant %+v", c.args, got, want)
		}
	}
}

// TestBadFlags: values out of range or unknown parts fail before
// anything runs, naming the flag.
func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--rate", "0"}, "--rate 0: must be > 0 (e.g. 1000)"},
		{[]string{"--size", "0"}, `--size 0: size "0": use e.g. 64MiB`},
		{[]string{"--overhead-rounds", "0"}, "--overhead-rounds 0: must be >= 1"},
		{[]string{"--poll", "-1s"}, "--poll -1s: must be >= 0"},
		{[]string{"--idle-duration", "0s"}, "--idle-duration 0s: must be > 0"},
		{[]string{"--only", "tailing,none"}, `--only "none": use lag, tailing, overhead or stores`},
		{[]string{"--lag-rounds", "0"}, "--lag-rounds 0: must be >= 1"},
		{[]string{"--candidate-args", "250ms --max-delay"}, `--candidate-args "250ms --max-delay": starts with "250ms", not a flag`},
		{[]string{"--sweep", "--max-delay 1s;;--max-delay 2s"}, `--sweep "--max-delay 1s;;--max-delay 2s": setting 2 is empty`},
		{[]string{"--sweep", "--max-delay 1s;2s"}, `setting 2 "2s": starts with "2s", not a flag`},
		{[]string{"--baseline", "/nonexistent/tailer-base"}, "--baseline /nonexistent/tailer-base: stat"},
		{[]string{"--baseline", "/bin/sh", "--baseline-rev", "main"}, "--baseline and --baseline-rev: give one"},
	} {
		_, err := parse(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// TestEveryNumericFlagHasALimit: as in tailer, every duration and integer
// flag declares its valid range.
func TestEveryNumericFlagHasALimit(t *testing.T) {
	n := 0
	newRootCmd().Flags().VisitAll(func(fl *pflag.Flag) {
		if !flaglimit.Numeric(fl) {
			return
		}
		n++
		if _, ok := flaglimit.Of(fl); !ok {
			t.Errorf("--%s (a %s) has no limit", fl.Name, fl.Value.Type())
		}
	})
	if n < 5 {
		t.Errorf("only %d numeric flags", n)
	}
}

// TestFindTailer: --tailer when given (and runnable), else the tailer
// beside tailer-bench, else on PATH, else how to build it.
func TestFindTailer(t *testing.T) {
	exe := func(dir, name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withTailer, alone, onPath := t.TempDir(), t.TempDir(), t.TempDir()
	beside := exe(withTailer, "tailer", 0o755)
	pathTailer := exe(onPath, "tailer", 0o755)
	notExec := exe(alone, "not-exec", 0o644)
	for _, c := range []struct {
		name, flag, self, path string
		want, wantErr          string
	}{
		{name: "flag", flag: pathTailer, self: filepath.Join(withTailer, "tailer-bench"), want: pathTailer},
		{name: "flag missing", flag: filepath.Join(alone, "nope"), self: filepath.Join(withTailer, "tailer-bench"), wantErr: "--tailer " + filepath.Join(alone, "nope") + ": stat"},
		{name: "flag not executable", flag: notExec, self: filepath.Join(withTailer, "tailer-bench"), wantErr: "--tailer " + notExec + ": permission denied"},
		{name: "beside", self: filepath.Join(withTailer, "tailer-bench"), path: onPath, want: beside},
		{name: "on PATH", self: filepath.Join(alone, "tailer-bench"), path: onPath, want: pathTailer},
		{name: "nowhere", self: filepath.Join(alone, "tailer-bench"), path: alone,
			wantErr: "no tailer binary beside " + filepath.Join(alone, "tailer-bench") + " or on PATH: build it with 'go build -o bin/tailer ./cmd/tailer', or pass --tailer PATH"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PATH", c.path)
			got, err := findTailer(c.flag, c.self)
			switch {
			case c.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("error %v, want %q", err, c.wantErr)
				}
			case err != nil || got != c.want:
				t.Errorf("%q, %v; want %q", got, err, c.want)
			}
		})
	}
}
