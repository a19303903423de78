// Package flaglimit declares and checks the valid range of a command's
// duration, size and count flags, so that a value out of range fails the
// command before it starts anything, with the flag, the value, where it
// came from and the valid range:
//
//	--poll 0s: must be > 0 (e.g. 1s)
//	--poll 0s (from /etc/tailer.yaml:3 (run.poll)): must be > 0 (e.g. 1s)
//	--poll (from TAILER_POLL, value not shown): must be > 0 (e.g. 1s)
//
// A command declares each such flag's range right after the flag, so the
// rule sits next to the help text it must agree with:
//
//	f.DurationVar(&cfg.Poll, "poll", time.Second, "how often to ...")
//	flaglimit.Set(f, "poll", flaglimit.Positive("1s"))
//
// The rule is kept on the flag itself (a pflag annotation), so it needs no
// table elsewhere and goes wherever the flag goes; Check reads it back
// once every source (command line, environment, config file, default) has
// filled the flags. It lives in its own package because two commands use
// it: tailer and tailer-bench.
//
// A rule never changes a flag's meaning: where the help documents 0 or a
// negative value as "off", the rule allows it (NonNegative, OrNegative).
package flaglimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tailer-backup/tailer/internal/config"
)

// annotation holds a flag's encoded rule.
const annotation = "tailer/limit"

// Rule is the valid range of one flag's value: at least (or, with above,
// more than) min; with negative set, any negative value too, meaning
// that. Durations are in nanoseconds.
type Rule struct {
	min      int64
	above    bool
	negative string
	example  string
	parser   string // for a string flag: its Parser's name ("" is not set)
}

// Positive: > 0.
func Positive(example string) Rule { return Rule{above: true, example: example} }

// NonNegative: >= 0 (the help says what 0 means).
func NonNegative(example string) Rule { return Rule{example: example} }

// AtLeast: >= min.
func AtLeast[T ~int | ~int64](min T, example string) Rule {
	return Rule{min: int64(min), example: example}
}

// OrNegative also allows any negative value, which the flag documents as
// meaning (e.g. "never").
func (r Rule) OrNegative(meaning string) Rule { r.negative = meaning; return r }

// ParsedBy applies r to a string flag whose value p turns into a number;
// an empty value is not set and not checked. Check must be given p.
func (r Rule) ParsedBy(p Parser) Rule { r.parser = p.Name; return r }

// Parser turns a string flag's value (7d, 64MiB) into the number its rule
// checks. Parsers are passed to Check rather than kept here, so this
// package needs none of the packages that define the formats.
type Parser struct {
	Name     string
	Parse    func(string) (int64, error)
	Duration bool // the number is a duration (for the message)
}

// Set declares the range of the flag name of fs. A flag that does not
// exist, or is of a type rules cannot read, is a programming error (a
// panic when the command tree is built, which every command's tests do).
func Set(fs *pflag.FlagSet, name string, r Rule) {
	fl := fs.Lookup(name)
	if fl == nil {
		panic("flaglimit: no flag --" + name)
	}
	if !Numeric(fl) && r.parser == "" || r.parser != "" && fl.Value.Type() != "string" {
		panic(fmt.Sprintf("flaglimit: --%s is a %s", name, fl.Value.Type()))
	}
	if err := fs.SetAnnotation(name, annotation, []string{
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

// Numeric reports whether fl is a duration or integer flag: one that
// needs a rule (the commands' tests check that every one has one).
func Numeric(fl *pflag.Flag) bool {
	_, ok := kinds[fl.Value.Type()]
	return ok
}

// Of returns the rule declared on fl, if any.
func Of(fl *pflag.Flag) (Rule, bool) {
	a, ok := fl.Annotations[annotation]
	if !ok || len(a) != 5 {
		return Rule{}, false
	}
	min, err := strconv.ParseInt(a[0], 10, 64)
	if err != nil {
		return Rule{}, false
	}
	return Rule{min: min, above: a[1] == "true", negative: a[2], example: a[3], parser: a[4]}, true
}

// Check checks every limited flag of fs; settings says where each value
// came from (nil: nothing is named); parsers are those the rules'
// ParsedBy named. It returns the first value out of range, in flag-name
// order. Values from the environment or through a ${VAR} are never
// echoed, as everywhere in the config layer: that is where secrets live.
func Check(fs *pflag.FlagSet, settings map[string]config.Setting, parsers ...Parser) error {
	var first error
	fs.VisitAll(func(fl *pflag.Flag) {
		if first != nil {
			return
		}
		r, ok := Of(fl)
		if !ok {
			return
		}
		if err := r.check(fl, parsers); err != nil {
			s, ok := settings[fl.Name]
			from := ok && (s.Source == config.FromEnv || s.Source == config.FromFile)
			switch {
			case config.IsSecret(fl) || s.Hidden && from:
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
func (r Rule) check(fl *pflag.Flag, parsers []Parser) error {
	values, duration, err := numbers(fl, r.parser, parsers)
	if err != nil {
		return err
	}
	for _, v := range values {
		switch {
		case v < 0 && r.negative != "":
		case v > r.min, v == r.min && !r.above:
		default:
			return errors.New(r.Want(duration))
		}
	}
	return nil
}

// Want renders r: "must be > 0, or negative for never (e.g. 5m)".
func (r Rule) Want(duration bool) string {
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
func numbers(fl *pflag.Flag, parser string, parsers []Parser) ([]int64, bool, error) {
	s := fl.Value.String()
	if parser != "" {
		i := 0
		for i < len(parsers) && parsers[i].Name != parser {
			i++
		}
		if i == len(parsers) {
			// A programming error, but not one to crash on.
			return nil, false, fmt.Errorf("no %s parser to check it with", parser)
		}
		p := parsers[i]
		if s == "" {
			return nil, p.Duration, nil
		}
		v, err := p.Parse(s)
		return []int64{v}, p.Duration, err
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
