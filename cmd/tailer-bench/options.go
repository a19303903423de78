package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/tailer-backup/tailer/bench"
	"github.com/tailer-backup/tailer/internal/benchflags"
)

// options checks the flags of f (v, as benchflags.Define added them) and
// turns them into the bench's options: Quick or Defaults, with every flag
// set applied over it.
func options(f *pflag.FlagSet, v *benchflags.Values) (bench.Options, error) {
	if err := benchflags.Check(f); err != nil {
		return bench.Options{}, err
	}
	changed := f.Changed
	o := bench.Defaults()
	if v.Quick {
		o = bench.Quick()
	}
	if changed("size") {
		size, err := benchflags.ParseSize(v.Size)
		if err != nil {
			return o, err
		}
		o.Size = size
	}
	if changed("rate") {
		o.Rate = v.Rate
	}
	if changed("lag-duration") {
		o.LagDuration = v.LagDuration
	}
	if changed("lag-rounds") {
		o.LagRounds = v.LagRounds
	}
	if changed("idle-duration") {
		o.IdleDuration = v.IdleDuration
	}
	if changed("overhead-duration") {
		o.OverheadDuration = v.OverheadDuration
	}
	if changed("overhead-rounds") {
		o.OverheadRounds = v.OverheadRounds
	}
	if benchflags.Custom(changed) {
		o.Mode += " (custom)"
	}
	for _, p := range v.Only {
		if !slices.Contains(bench.Parts, p) {
			return o, fmt.Errorf("--only %q: use %s or %s", p, strings.Join(bench.Parts[:len(bench.Parts)-1], ", "), bench.Parts[len(bench.Parts)-1])
		}
	}
	var err error
	if o.CandidateArgs, err = benchflags.ParseArgs(v.CandidateArgs); err != nil {
		return o, fmt.Errorf("--candidate-args %w", err)
	}
	if o.Sweep, err = benchflags.ParseSweep(v.Sweep); err != nil {
		return o, fmt.Errorf("--sweep %q: %w", v.Sweep, err)
	}
	if v.Baseline != "" && v.BaselineRev != "" {
		return o, fmt.Errorf("--baseline and --baseline-rev: give one (a binary, or a git revision to build it from)")
	}
	o.BaselineRev = v.BaselineRev
	if v.Baseline != "" {
		if err := executable(v.Baseline); err != nil {
			return o, fmt.Errorf("--baseline %s: %w", v.Baseline, err)
		}
		o.Baseline = v.Baseline
	}
	o.Only, o.Poll, o.Work, o.Keep = v.Only, v.Poll, v.Work, v.Keep
	return o, nil
}

// findTailer returns the tailer binary to measure: flag when given,
// else the tailer beside self (tailer-bench's own path), else the one on
// PATH.
func findTailer(flag, self string) (string, error) {
	if flag != "" {
		if err := executable(flag); err != nil {
			return "", fmt.Errorf("--tailer %s: %w", flag, err)
		}
		return flag, nil
	}
	beside := filepath.Join(filepath.Dir(self), "tailer")
	if executable(beside) == nil {
		return beside, nil
	}
	if p, err := exec.LookPath("tailer"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no tailer binary beside %s or on PATH: build it with 'go build -o bin/tailer ./cmd/tailer', or pass --tailer PATH", self)
}

// executable says why path is not a program that can be run.
func executable(path string) error {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return errors.New("not a regular file")
	case st.Mode().Perm()&0o111 == 0:
		return fs.ErrPermission
	}
	return nil
}

// logger builds the log of the tailer parts that run in-process (the
// tailing phase's agent, restores), on stderr.
func logger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "auto", "":
		if term.IsTerminal(int(os.Stderr.Fd())) {
			return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text, json or auto", format)
}
