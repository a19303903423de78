package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/tailer-backup/tailer/internal/flaglimit"
)

// TestLimits runs the real binary with every limited flag at values its
// rule refuses, from the command line, the environment and the config
// file: each must fail before the command starts, with the flag, the value,
// where it came from and the valid range.
func TestLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, body string) string { return writeFile(t, dir, name, body) }
	type row struct {
		cmd, flag, value, want string
	}
	rows := []row{
		{"run", "poll", "0s", "must be > 0 (e.g. 1s)"},
		{"run", "poll", "-1s", "must be > 0"},
		{"run", "max-delay", "0s", "must be > 0 (e.g. 200ms)"},
		{"run", "max-delay", "-1s", "must be > 0"},
		{"run", "min-put-interval", "-1s", "must be >= 0 (e.g. 1s; 0 is no bound beyond --max-delay)"},
		{"run", "export-interval", "-1h0m0s", "must be >= 0 (e.g. 24h; 0 disables periodic exports)"},
		{"run", "shutdown-timeout", "0s", "must be > 0 (e.g. 30s)"},
		{"run", "shutdown-timeout", "-5s", "must be > 0"},
		{"run", "spool-max-bytes", "-1", "must be >= 0"},
		{"run", "retention", "-7d", "must be > 0 (e.g. 7d"},
		{"run", "retention", "0d", "must be > 0"},
		{"run", "retain-exports", "-1", "must be >= 0"},
		{"run", "maintenance-interval", "0s", "must be > 0, or negative for never (e.g. 5m)"},
		{"run", "lease-ttl", "100ms", "must be >= 500ms, or negative for no lease (e.g. 30s)"},
		{"run", "lease-ttl", "0s", "must be >= 500ms"},
		{"run", "lease-wait", "-1s", "must be >= 0"},
		{"run", "lease-margin", "-1s", "must be >= 0"},
		{"run", "wal-pin-interval", "0s", "must be > 0, or negative for no pinning"},
		{"run", "ready-max-lag", "0s", "must be > 0 (e.g. 2m)"},
		{"run", "ready-max-lag", "-1m0s", "must be > 0"},
		{"export", "progress", "0s", "must be > 0 (e.g. 5s)"},
		{"export", "blob-depth", "-1", "must be >= 0"},
		{"restore", "blob-depth", "-1", "must be >= 0"},
		{"run", "blob-depth", "-1", "must be >= 0"},
		{"restore", "progress", "-1s", "must be > 0"},
		{"restore", "interval", "0s", "must be > 0 (e.g. 1s)"},
		{"prune", "retention", "-1d", "must be > 0 (e.g. 7d)"},
		{"prune", "retain-exports", "-2", "must be >= 0"},
		{"compact", "levels", "500ms", "must be >= 1s (e.g. 1m,1h)"},
		{"compact", "live-edge", "-1s", "must be >= 0"},
		{"compact", "grace", "-1s", "must be >= 0 (e.g. 1h; 0 deletes at once)"},
		{"compact", "max-bytes", "0", "must be > 0"},
		{"bench", "size", "0", `size "0": use e.g. 64MiB`},
		{"bench", "rate", "0", "must be > 0"},
		{"bench", "lag-duration", "0s", "must be > 0"},
		{"bench", "idle-duration", "-1s", "must be > 0"},
		{"bench", "overhead-duration", "0s", "must be > 0"},
		{"bench", "overhead-rounds", "0", "must be >= 1"},
		{"bench", "poll", "-1s", "must be >= 0"},
		{"verify", "parallel", "0", "must be >= 1 (e.g. 4)"},
		{"verify", "parallel", "-3", "must be >= 1"},
		{"status", "max-lag", "-1s", "must be >= 0"},
	}
	var cases []cliCase
	for i, r := range rows {
		shown := r.value
		if r.flag == "levels" {
			shown = "[" + r.value + "]"
		}
		head := "--" + r.flag + " " + shown
		var format []string // progress (and export's blob-depth) are read only with --format stalwart
		switch {
		case r.flag == "progress", r.cmd == "export" && r.flag == "blob-depth":
			format = []string{"--format", "stalwart"}
		case r.cmd == "bench":
			// Should the limit not hold, fail at once rather than
			// start a benchmark (and its MinIO servers).
			format = []string{"--only", "none"}
		}
		cases = append(cases, cliCase{name: r.cmd + " --" + r.flag + " " + r.value,
			args: append([]string{r.cmd, "--" + r.flag, r.value}, format...), want: []string{head + ": " + r.want}})
		// The same value from the environment and from the file, which
		// say where it came from.
		env := "TAILER_" + strings.ToUpper(strings.ReplaceAll(r.flag, "-", "_"))
		cases = append(cases, cliCase{name: r.cmd + " " + env + "=" + r.value,
			args: append([]string{r.cmd}, format...), env: []string{env + "=" + r.value}, want: []string{"--" + r.flag + " (from " + env + ", value not shown): " + r.want}})
		f := file(fmt.Sprintf("limit-%d.yaml", i), r.cmd+":\n  "+r.flag+": \""+r.value+"\"\n")
		cases = append(cases, cliCase{name: r.cmd + " " + r.flag + " in the file",
			args: append([]string{r.cmd, "--config", f}, format...), want: []string{head + " (from " + f + ":2 (" + r.cmd + "." + r.flag + ")): " + r.want}})
	}
	// Through a ${VAR} in the file: where, not what.
	cases = append(cases, cliCase{name: "poll through ${VAR} in the file",
		args: []string{"run", "--config", file("var.yaml", "run:\n  poll: ${POLL}\n")}, env: []string{"POLL=0s"},
		want: []string{"--poll (from " + filepath.Join(dir, "var.yaml") + ":2 (run.poll), value not shown): must be > 0"}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checkFailure(t, c)
		})
	}
}

// TestLimitsAllow: the values a flag's help gives a meaning to (0 for
// "off", negative for "never"), boundaries and the defaults all pass.
func TestLimitsAllow(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--export-interval", "0s", "--spool-max-bytes", "0", "--retain-exports", "0", "--lease-wait", "0s"},
		{"run", "--maintenance-interval", "-1s", "--lease-ttl", "-1s", "--wal-pin-interval", "-1s"},
		{"run", "--lease-ttl", "500ms", "--retention", "36h", "--poll", "1ns"},
		{"run", "--retention", ""},
		{"compact", "--grace", "0s", "--live-edge", "0s", "--levels", "1s,1h"},
		{"prune", "--retention", "2w", "--retain-exports", "1"},
		{"bench", "--poll", "0s", "--overhead-rounds", "1", "--size", "1MiB"},
		{"status", "--max-lag", "0s"},
		{"verify", "--parallel", "1"},
	} {
		cmd, settings, err := resolve(t, args, nil)
		if err == nil {
			err = checkLimits(cmd.Flags(), settings)
		}
		if err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
	for name, flags := range commands(newRootCmd()) {
		fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
		for _, fl := range flags {
			fs.AddFlag(fl)
		}
		if err := checkLimits(fs, nil); err != nil {
			t.Errorf("%s: a default is out of its own range: %v", name, err)
		}
	}
}

// TestEveryNumericFlagHasALimit: every duration and integer flag of every
// command declares its valid range (limits.go), so a new flag cannot be
// added without deciding what values make sense.
func TestEveryNumericFlagHasALimit(t *testing.T) {
	n := 0
	for name, flags := range commands(newRootCmd()) {
		for _, fl := range flags {
			if !flaglimit.Numeric(fl) {
				continue
			}
			n++
			if _, ok := flaglimit.Of(fl); !ok {
				t.Errorf("tailer %s --%s (a %s) has no limit: declare its range with limit() where it is defined", name, fl.Name, fl.Value.Type())
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d numeric flags found: is the command tree empty?", n)
	}
}
