package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Source says where a flag's value came from, in increasing precedence.
type Source int

const (
	FromDefault Source = iota
	FromFile
	FromEnv
	FromFlag
)

func (s Source) String() string {
	return [...]string{"default", "file", "env", "flag"}[s]
}

// SecretAnnotation marks a flag whose value is a secret: it is never
// echoed in an error, whatever its source.
const SecretAnnotation = "tailer/secret"

// Setting is how one flag got its value.
type Setting struct {
	Flag   string
	Source Source
	// Where: "--poll", "TAILER_POLL", "FILE:LINE (run.poll)", "default".
	Where string
	// Hidden says the value must not be echoed in a message: it came from
	// the environment or through a ${VAR} (where secrets live), or the
	// flag is a secret.
	Hidden bool
}

// Resolver sets the flags of one command that the command line left
// unset, from the environment, then the file.
type Resolver struct {
	File   *File    // nil: no file
	Path   []string // the command's names below the root, e.g. ["run"]
	Getenv func(string) (string, bool)
	// Skip, if set, is asked before a value from the environment or the
	// file is applied; true leaves the flag at its default. (export and
	// restore use it to leave out a shared value that does not go with
	// the --format in effect.)
	Skip func(flag string, src Source) bool
	// Ignore lists flags never taken from the environment or the file
	// (help; config, which names the file itself).
	Ignore map[string]bool

	done map[string]Setting
}

// Flag resolves one flag, once: later calls return the first result.
// Resolve a flag that Skip depends on (format) before the others.
func (r *Resolver) Flag(fs *pflag.FlagSet, name string) (Setting, error) {
	if s, ok := r.done[name]; ok {
		return s, nil
	}
	if r.done == nil {
		r.done = map[string]Setting{}
	}
	fl := fs.Lookup(name)
	if fl == nil {
		return Setting{}, fmt.Errorf("no flag --%s", name)
	}
	s, err := r.resolve(fs, fl)
	if err != nil {
		return s, err
	}
	r.done[name] = s
	return s, nil
}

func (r *Resolver) resolve(fs *pflag.FlagSet, fl *pflag.Flag) (Setting, error) {
	s := Setting{Flag: fl.Name, Source: FromDefault, Where: "default"}
	if fl.Changed {
		s.Source, s.Where = FromFlag, "--"+fl.Name
		return s, nil
	}
	if r.Ignore[fl.Name] {
		return s, nil
	}
	getenv := r.Getenv
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	env := EnvName(fl.Name)
	if v, ok := getenv(env); ok {
		if r.Skip != nil && r.Skip(fl.Name, FromEnv) {
			return s, nil
		}
		s.Source, s.Where, s.Hidden = FromEnv, env, true
		// An environment value is never shown: it is where secrets live.
		return s, set(fs, fl, v, env, false)
	}
	v, ok := r.File.Lookup(r.Path, fl.Name)
	if !ok {
		return s, nil
	}
	if r.Skip != nil && r.Skip(fl.Name, FromFile) {
		return s, nil
	}
	s.Source, s.Where = FromFile, v.Where
	if v.List {
		s.Hidden = IsSecret(fl) || slices.ContainsFunc(v.Items, func(it string) bool { return strings.Contains(it, "$") })
		return s, setList(fl, v, getenv)
	}
	val, expanded, err := Expand(v.Raw, getenv)
	if err != nil {
		return s, fmt.Errorf("%s: %v", v.Where, err)
	}
	s.Hidden = expanded || IsSecret(fl)
	return s, set(fs, fl, val, v.Where, !s.Hidden)
}

// setList applies a YAML list to a slice flag item by item (Replace), so
// an item may hold a comma, which the flag's own comma-separated parsing
// would split. A list for a single-valued flag is an error.
func setList(fl *pflag.Flag, v Value, getenv func(string) (string, bool)) error {
	sv, ok := fl.Value.(pflag.SliceValue)
	if !ok {
		return fmt.Errorf("%s: --%s takes one value, not a list", v.Where, fl.Name)
	}
	items := make([]string, len(v.Items))
	show := !IsSecret(fl)
	for i, raw := range v.Items {
		val, expanded, err := Expand(raw, getenv)
		if err != nil {
			return fmt.Errorf("%s: %v", v.Where, err)
		}
		items[i], show = val, show && !expanded
	}
	if err := sv.Replace(items); err != nil {
		if !show {
			return fmt.Errorf("%s: invalid value for --%s: not a valid %s (value not shown)", v.Where, fl.Name, fl.Value.Type())
		}
		return fmt.Errorf("%s: invalid value for --%s (a %s): %v", v.Where, fl.Name, fl.Value.Type(), err)
	}
	// As FlagSet.Set does, so the command sees the flag as given.
	fl.Changed = true
	return nil
}

// set applies a value as if given on the command line, so a command sees
// it as Changed (a config-file "grace: 0" means "at once" exactly as
// --grace 0 does). The value appears in the error only when show is
// true: never for secrets or values from the environment.
func set(fs *pflag.FlagSet, fl *pflag.Flag, val, where string, show bool) error {
	err := fs.Set(fl.Name, val)
	if err == nil {
		return nil
	}
	if !show {
		return fmt.Errorf("%s: invalid value for --%s: not a valid %s (value not shown)", where, fl.Name, fl.Value.Type())
	}
	cause := err
	var ive *pflag.InvalidValueError
	if errors.As(err, &ive) && ive.Unwrap() != nil {
		cause = ive.Unwrap()
	}
	return fmt.Errorf("%s: invalid value %q for --%s (a %s): %v", where, val, fl.Name, fl.Value.Type(), cause)
}

// IsSecret reports whether a flag carries SecretAnnotation.
func IsSecret(fl *pflag.Flag) bool {
	_, ok := fl.Annotations[SecretAnnotation]
	return ok
}

// All resolves every flag of fs (in name order) and returns how each got
// its value.
func (r *Resolver) All(fs *pflag.FlagSet) ([]Setting, error) {
	var (
		out  []Setting
		errs []error
	)
	fs.VisitAll(func(fl *pflag.Flag) {
		s, err := r.Flag(fs, fl.Name)
		if err != nil {
			errs = append(errs, err)
			return
		}
		out = append(out, s)
	})
	return out, errors.Join(errs...)
}
