// Package benchflags defines the benchmark's flags once, for the two
// commands that take them: tailer-bench, which runs the benchmark, and
// `tailer bench`, which resolves them like any tailer command's (command
// line, TAILER_<FLAG>, the --config file, limits) and hands them to
// tailer-bench. It imports neither the benchmark nor any test code, so
// the tailer binary stays free of both.
package benchflags

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tailer-backup/tailer/internal/flaglimit"
)

// About is what the benchmark measures, for both commands' --help.
const About = `The benchmark measures, in one run and side by side:

  lag       commit on a Stalwart-like primary → MinIO's 200 for the PUT of
            the segment holding it, p50/p99/max at a steady --rate and at
            full speed, with PUTs/s and tailer's CPU per shipped MB; 'tailer
            run' is a subprocess and the bench's proxy sees every request
  overhead  load generator throughput with 'tailer run' ÷ without (same
            seed and duration, alternated --overhead-rounds times)
  baseline  with --baseline PATH (e.g. today's main), every lag and overhead
            run is repeated with that binary, alternated, and each figure
            is printed for both with the ratio candidate ÷ baseline;
            --candidate-args are 'run' flags only the candidate gets, and
            --sweep runs the steady phase once per candidate setting
  export    'tailer export' time and bytes vs a RocksDB checkpoint + tar | zstd -3
  restore   'tailer restore' time vs copying the checkpoint back, untar, and
            RocksDB's BackupEngine restore
  memory    peak RSS of the tailer process exporting and restoring stores
            of --size and 4× --size
  cost      S3 PUT/GET/LIST per hour tailing at --rate and idle, and per restore

It starts its own MinIO on 127.0.0.1 (the binary scripts/install-deps.sh
installs) and needs tar and zstd. The default run takes a few minutes and
uses 128 MiB and 512 MiB stores (the goals are stated for ≥ 1 GiB and 4 GiB:
--size 1GiB, longer); --quick is a ~1 minute smoke run. The work directory
needs room for about 6× the large store. Prefer the ratios: they are
measured within one run; absolute figures move with the machine's load.`

// Values are the flags' values after parsing.
type Values struct {
	Quick, JSON, Keep bool
	Only              []string
	Size, Work        string
	Rate              int
	LagDuration       time.Duration
	IdleDuration      time.Duration
	OverheadDuration  time.Duration
	OverheadRounds    int
	Poll              time.Duration
	LagRounds         int
	Baseline          string
	BaselineRev       string
	CandidateArgs     string
	Sweep             string
}

// names are the flags Define adds, in the order Args forwards them.
var names = []string{"quick", "json", "only", "size", "rate", "lag-duration", "lag-rounds", "idle-duration",
	"overhead-duration", "overhead-rounds", "poll", "baseline", "baseline-rev", "candidate-args", "sweep", "work", "keep"}

// Custom reports whether a run is "custom" rather than default or quick
// (the report says which settings it ran with): whether changed, which
// says if a flag was set, holds for a flag that changes what is measured.
func Custom(changed func(name string) bool) bool {
	for _, name := range names {
		switch name {
		case "quick", "json", "work", "keep", "baseline", "baseline-rev":
		default:
			if changed(name) {
				return true
			}
		}
	}
	return false
}

// Define adds the benchmark's flags to fs, each numeric one with its
// valid range (internal/flaglimit; check them with Check).
func Define(fs *pflag.FlagSet) *Values {
	v := &Values{}
	fs.BoolVar(&v.Quick, "quick", false, "a ~1 minute smoke run (small stores, short phases), for CI")
	fs.BoolVar(&v.JSON, "json", false, "print the report as JSON instead of tables")
	fs.StringSliceVar(&v.Only, "only", nil, "run only these parts: lag (the lag phases and --sweep), tailing (lag, idle, cost), overhead, stores (export, restore, memory)")
	fs.StringVar(&v.Size, "size", "128MiB", "the small store's size; the large one is 4× (the issue's goals: 1GiB)")
	fs.IntVar(&v.Rate, "rate", 1000, "the steady load, tx/s")
	fs.DurationVar(&v.LagDuration, "lag-duration", 10*time.Second, "load in each run of a lag phase (steady, full speed; --lag-rounds runs per binary)")
	fs.IntVar(&v.LagRounds, "lag-rounds", 2, "runs of each lag phase per binary, alternating the binaries' order")
	fs.DurationVar(&v.IdleDuration, "idle-duration", 30*time.Second, "the idle phase (PUTs must be 0)")
	fs.DurationVar(&v.OverheadDuration, "overhead-duration", 10*time.Second, "each run of the overhead comparison")
	fs.IntVar(&v.OverheadRounds, "overhead-rounds", 3, "with/without pairs in the overhead comparison")
	fs.DurationVar(&v.Poll, "poll", 0, "--poll of every 'tailer run' (candidate and baseline; default: run's default, 1s)")
	fs.StringVar(&v.Baseline, "baseline", "", "a second tailer binary (e.g. today's main) measured in the same run, alternated with --tailer; the report gives each figure for both and candidate ÷ baseline")
	fs.StringVar(&v.BaselineRev, "baseline-rev", "", "instead of --baseline: a git revision (e.g. main) of the checkout tailer-bench runs in, whose tailer it builds into its work directory as the baseline")
	fs.StringVar(&v.CandidateArgs, "candidate-args", "", "extra 'tailer run' flags for the candidate only, split at spaces (e.g. \"--max-delay 250ms\")")
	fs.StringVar(&v.Sweep, "sweep", "", "candidate settings separated by ';' (e.g. \"--max-delay 100ms;--max-delay 250ms --min-put-interval 1s\"): the steady lag phase runs once per setting, after --candidate-args")
	fs.StringVar(&v.Work, "work", "", "where the bench makes its own temporary directory (default: the system's); only that one is removed at the end")
	fs.BoolVar(&v.Keep, "keep", false, "keep the bench's temporary directory")
	flaglimit.Set(fs, "size", flaglimit.Positive("128MiB").ParsedBy(SizeParser))
	flaglimit.Set(fs, "rate", flaglimit.Positive("1000"))
	flaglimit.Set(fs, "lag-duration", flaglimit.Positive("10s"))
	flaglimit.Set(fs, "lag-rounds", flaglimit.AtLeast(1, "2"))
	flaglimit.Set(fs, "idle-duration", flaglimit.Positive("30s"))
	flaglimit.Set(fs, "overhead-duration", flaglimit.Positive("10s"))
	flaglimit.Set(fs, "overhead-rounds", flaglimit.AtLeast(1, "3"))
	flaglimit.Set(fs, "poll", flaglimit.NonNegative("250ms; 0 is run's default"))
	return v
}

// Check checks the limited flags of fs (those Define declared and any
// other), with the parsers they need.
func Check(fs *pflag.FlagSet) error { return flaglimit.Check(fs, nil, SizeParser) }

// Args renders the flags of Define that are set in fs as arguments
// (--name=value), so another process parses the same values.
func Args(fs *pflag.FlagSet) []string {
	var args []string
	for _, name := range names {
		fl := fs.Lookup(name)
		if fl == nil || !fl.Changed {
			continue
		}
		val := fl.Value.String()
		if _, ok := fl.Value.(pflag.SliceValue); ok {
			// "[a,b]": the brackets around what Set reads back.
			val = strings.TrimSuffix(strings.TrimPrefix(val, "["), "]")
		}
		args = append(args, "--"+name+"="+val)
	}
	return args
}

// SizeParser checks --size with ParseSize.
var SizeParser = flaglimit.Parser{Name: "size", Parse: ParseSize}

// ParseSize reads a byte count such as 1GiB, 64MiB, 512M or 1000000
// (K, M, G are binary, as the store sizes in the issue are).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "i")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult, t = 1<<10, t[:n-1]
		case 'm', 'M':
			mult, t = 1<<20, t[:n-1]
		case 'g', 'G':
			mult, t = 1<<30, t[:n-1]
		}
	}
	var v float64
	if _, err := fmt.Sscanf(t, "%g", &v); err != nil || v <= 0 {
		return 0, fmt.Errorf("size %q: use e.g. 64MiB or 1GiB", s)
	}
	return int64(v * float64(mult)), nil
}

// ParseArgs splits a --candidate-args value into arguments at spaces
// (no quoting: run flag values hold none).
func ParseArgs(s string) ([]string, error) {
	args := strings.Fields(s)
	if len(args) == 0 {
		return nil, nil
	}
	if !strings.HasPrefix(args[0], "-") {
		return nil, fmt.Errorf("%q: starts with %q, not a flag (e.g. \"--max-delay 250ms\")", s, args[0])
	}
	return args, nil
}

// ParseSweep splits a --sweep value into its settings (separated by ';',
// each split as ParseArgs does). Empty settings are an error, not a run
// with no flags: say "--poll 1s" to sweep run's default.
func ParseSweep(s string) ([][]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out [][]string
	for i, part := range strings.Split(s, ";") {
		args, err := ParseArgs(part)
		if err != nil {
			return nil, fmt.Errorf("setting %d %w", i+1, err)
		}
		if len(args) == 0 {
			return nil, fmt.Errorf("setting %d is empty (separate settings with ';', e.g. \"--max-delay 100ms;--max-delay 250ms\")", i+1)
		}
		out = append(out, args)
	}
	return out, nil
}
