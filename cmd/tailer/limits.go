package main

// Limits: the valid range of every duration, size and count flag
// (internal/flaglimit, shared with tailer-bench).
//
// A command declares each such flag's range right after the flag, in one
// call, so the rule sits next to the help text it must agree with:
//
//	f.DurationVar(&cfg.Poll, "poll", time.Second, "how often to ...")
//	limit(f, "poll", positive("1s"))
//	limit(f, "lease-ttl", atLeast(500*time.Millisecond, "30s").orNegative("no lease"))
//	limit(f, "retention", positive("7d").parsedBy(parseAge)) // a string flag
//
// setupConfig's PersistentPreRunE calls checkLimits once the environment
// and the config file have filled the flags, before the command starts
// anything: every limited flag's value is checked, whatever set it, and a
// value out of range fails the command with
//
//	tailer: --poll 0s: must be > 0 (e.g. 1s)
//	tailer: --poll 0s (from /etc/tailer.yaml:3 (run.poll)): must be > 0 (e.g. 1s)
//	tailer: --poll (from TAILER_POLL, value not shown): must be > 0 (e.g. 1s)
//
// TestEveryNumericFlagHasALimit fails for a duration or integer flag that
// declares none, and TestLimits runs every rule's bad values through the
// real binary; a new flag needs a limit call and a row there.

import (
	"github.com/spf13/pflag"

	"github.com/tailer-backup/tailer/internal/benchflags"
	"github.com/tailer-backup/tailer/internal/config"
	"github.com/tailer-backup/tailer/internal/flaglimit"
	"github.com/tailer-backup/tailer/retention"
)

// rule is a flaglimit.Rule with the short names the commands use.
type rule struct{ flaglimit.Rule }

// positive: > 0.
func positive(example string) rule { return rule{flaglimit.Positive(example)} }

// nonNegative: >= 0 (the help says what 0 means).
func nonNegative(example string) rule { return rule{flaglimit.NonNegative(example)} }

// atLeast: >= min.
func atLeast[T ~int | ~int64](min T, example string) rule {
	return rule{flaglimit.AtLeast(min, example)}
}

// orNegative also allows any negative value, which the flag documents as
// meaning (e.g. "never").
func (r rule) orNegative(meaning string) rule { return rule{r.OrNegative(meaning)} }

// parsedBy applies r to a string flag, whose value p turns into a number;
// an empty value is not set and not checked.
func (r rule) parsedBy(p flaglimit.Parser) rule { return rule{r.ParsedBy(p)} }

// Parsers of string flags with a numeric meaning.
var (
	// parseAge is retention.ParseAge: 7d, 36h, 2w.
	parseAge = flaglimit.Parser{Name: "age", Duration: true, Parse: func(s string) (int64, error) {
		d, err := retention.ParseAge(s)
		return int64(d), err
	}}
	// parseSize is benchflags.ParseSize: 64MiB, 1GiB.
	parseSize = benchflags.SizeParser
)

// limit declares the range of the flag name of fs (flaglimit.Set).
func limit(fs *pflag.FlagSet, name string, r rule) { flaglimit.Set(fs, name, r.Rule) }

// checkLimits checks every limited flag of fs; settings says where each
// value came from (nil: nothing is named). It returns the first value out
// of range, in flag-name order.
func checkLimits(fs *pflag.FlagSet, settings map[string]config.Setting) error {
	return flaglimit.Check(fs, settings, parseAge, parseSize)
}
