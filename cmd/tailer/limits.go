package main

// Limits: the valid range of every duration, size and count flag.
//
// A command declares each such flag's range right after the flag, in one
// call, so the rule sits next to the help text it must agree with:
//
//	f.DurationVar(&cfg.Poll, "poll", time.Second, "how often to ...")
//	limit(f, "poll", positive("1s"))
//	limit(f, "lease-ttl", atLeast(500*time.Millisecond, "30s").orNegative("no lease"))
//	limit(f, "retention", positive("7d").parsedBy(parseAge)) // a string flag
//
// The rule is kept on the flag itself (a pflag annotation), so it needs no
// table elsewhere and goes wherever the flag goes. setupConfig's
// PersistentPreRunE calls checkLimits once the environment and the config
// file have filled the flags, before the command starts anything: every
// limited flag's value is checked, whatever set it (the command line,
// TAILER_<FLAG>, the file or the default), and a value out of range fails
// the command with
//
//	tailer: --poll 0s: must be > 0 (e.g. 1s)
//	tailer: --poll 0s (from /etc/tailer.yaml:3 (run.poll)): must be > 0 (e.g. 1s)
//	tailer: --poll (from TAILER_POLL, value not shown): must be > 0 (e.g. 1s)
//
// (values from the environment or through a ${VAR} are never echoed, as
// everywhere in the config layer: that is where secrets live).
//
// A rule never changes a flag's meaning: where the help documents 0 or a
// negative value as "off", the rule allows it (nonNegative, orNegative).
// TestEveryNumericFlagHasALimit fails for a duration or integer flag that
// declares none, and TestLimits runs every rule's bad values through the
// real binary; a new flag needs a limit call and a row there.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tailer-backup/tailer/bench"
	"github.com/tailer-backup/tailer/internal/config"
	"github.com/tailer-backup/tailer/retention"
)

// limitAnnotation holds a flag's encoded rule.
const limitAnnotation = "tailer/limit"

// rule is the valid range of one flag's value: at least (or, with above,
// more than) min; with negative set, any negative value too, meaning
// that. Durations are in nanoseconds.
type rule struct {
	min      int64
	above    bool
	negative string
	example  string
	parser   string // for a string flag: its parser's name in parsers ("" is not set)
}

// positive: > 0.
func positive(example string) rule { return rule{above: true, example: example} }

// nonNegative: >= 0 (the help says what 0 means).
func nonNegative(example string) rule { return rule{example: example} }

// atLeast: >= min.
func atLeast[T ~int | ~int64](min T, example string) rule {
	return rule{min: int64(min), example: example}
}

// orNegative also allows any negative value, which the flag documents as
// meaning (e.g. "never").
func (r rule) orNegative(meaning string) rule { r.negative = meaning; return r }

// parsedBy applies r to a string flag, whose value parser p turns into a
// number; an empty value is not set and not checked.
func (r rule) parsedBy(p string) rule { r.parser = p; return r }

// Parsers of string flags with a numeric meaning.
const (
	parseAge  = "age"  // retention.ParseAge: 7d, 36h, 2w
	parseSize = "size" // bench.ParseSize: 64MiB, 1GiB
)

// parsers turns a string flag's value into the number its rule checks;
// duration says the number is one (for the message).
var parsers = map[string]struct {
	parse    func(string) (int64, error)
	duration bool
}{
	parseAge: {func(s string) (int64, error) {
		d, err := retention.ParseAge(s)
		return int64(d), err
	}, true},
	parseSize: {bench.ParseSize, false},
}

// limit declares the range of the flag name of fs. A flag that does not
// exist, or is of a type rules cannot read, is a programming error, and
// TestEveryNumericFlagHasALimit builds every command.
func limit(fs *pflag.FlagSet, name string, r rule) {
	fl := fs.Lookup(name)
	if fl == nil {
		panic("limit: no flag --" + name)
	}
	if _, ok := kinds[fl.Value.Type()]; !ok && r.parser == "" || r.parser != "" && fl.Value.Type() != "string" {
		panic(fmt.Sprintf("limit: --%s is a %s", name, fl.Value.Type()))
	}
	if err := fs.SetAnnotation(name, limitAnnotation, []string{
		strconv.FormatInt(r.min, 10), strconv.FormatBool(r.above), r.negative, r.example, r.parser,
	}); err != nil {
		panic(err)
	}
}

// kinds are the flag types a rule reads without a parser, and whether
// their numbers are durations.
var kinds = map[string]bool{
	"duration": true, "durationSlice": true,
	"int": false, "int8": false, "int16": false, "int32": false, "int64": false,
}

func ruleOf(fl *pflag.Flag) (rule, bool) {
	a, ok := fl.Annotations[limitAnnotation]
	if !ok || len(a) != 5 {
		return rule{}, false
	}
	min, err := strconv.ParseInt(a[0], 10, 64)
	if err != nil {
		return rule{}, false
	}
	return rule{min: min, above: a[1] == "true", negative: a[2], example: a[3], parser: a[4]}, true
}

// checkLimits checks every limited flag of fs; settings says where each
// value came from (nil: nothing is named). It returns the first value out
// of range, in flag-name order.
func checkLimits(fs *pflag.FlagSet, settings map[string]config.Setting) error {
	var first error
	fs.VisitAll(func(fl *pflag.Flag) {
		if first != nil {
			return
		}
		r, ok := ruleOf(fl)
		if !ok {
			return
		}
		if err := r.check(fl); err != nil {
			s, ok := settings[fl.Name]
			from := ok && (s.Source == config.FromEnv || s.Source == config.FromFile)
			switch {
			case config.IsSecret(fl) || s.Hidden && from:
				// Values from the environment or a ${VAR} are never
				// echoed (config's rule): say where, not what.
				first = fmt.Errorf("--%s (from %s, value not shown): %w", fl.Name, s.Where, err)
			case from:
				first = fmt.Errorf("--%s %s (from %s): %w", fl.Name, fl.Value.String(), s.Where, err)
			default:
				first = fmt.Errorf("--%s %s: %w", fl.Name, fl.Value.String(), err)
			}
		}
	})
	return first
}

// check returns why fl's value breaks r, nil when it does not.
func (r rule) check(fl *pflag.Flag) error {
	values, duration, err := numbers(fl, r.parser)
	if err != nil {
		return err
	}
	for _, v := range values {
		switch {
		case v < 0 && r.negative != "":
		case v > r.min, v == r.min && !r.above:
		default:
			return errors.New(r.want(duration))
		}
	}
	return nil
}

// want renders r: "must be > 0, or negative for never (e.g. 5m)".
func (r rule) want(duration bool) string {
	bound := strconv.FormatInt(r.min, 10)
	if duration && r.min != 0 {
		bound = time.Duration(r.min).String()
	}
	op := ">="
	if r.above {
		op = ">"
	}
	msg := "must be " + op + " " + bound
	if r.negative != "" {
		msg += ", or negative for " + r.negative
	}
	if r.example != "" {
		msg += " (e.g. " + r.example + ")"
	}
	return msg
}

// numbers reads fl's value as the numbers its rule checks (every item of
// a list; none for an unset string) and whether they are durations.
func numbers(fl *pflag.Flag, parser string) ([]int64, bool, error) {
	s := fl.Value.String()
	if parser != "" {
		p := parsers[parser]
		if s == "" {
			return nil, p.duration, nil
		}
		v, err := p.parse(s)
		return []int64{v}, p.duration, err
	}
	duration := kinds[fl.Value.Type()]
	var items []string
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		items = sv.GetSlice()
	} else {
		items = []string{s}
	}
	out := make([]int64, 0, len(items))
	for _, it := range items {
		var v int64
		var err error
		if duration {
			var d time.Duration
			d, err = time.ParseDuration(strings.TrimSpace(it))
			v = int64(d)
		} else {
			v, err = strconv.ParseInt(strings.TrimSpace(it), 10, 64)
		}
		if err != nil {
			return nil, duration, fmt.Errorf("not a valid %s", fl.Value.Type())
		}
		out = append(out, v)
	}
	return out, duration, nil
}
