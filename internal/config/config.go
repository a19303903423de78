// Package config gives every tailer command one way to be configured
// besides its flags: a YAML file and TAILER_* environment variables. It
// knows nothing about the commands themselves; it resolves the flags of a
// pflag.FlagSet, so a flag added to any command is configurable at once,
// without code of its own.
//
// Precedence, highest first: the command line, the environment
// (TAILER_<FLAG>, dashes as underscores), the file (a command's section,
// then the top level), the flag's default.
//
// The file is a YAML mapping. A top-level key names a flag and applies to
// every command that has that flag, like an environment variable; a key
// whose value is a mapping is a section for the command of that name, and
// its keys apply to that command only, over the top-level ones:
//
//	replica: s3://backups/mail        # run, list, restore, verify, ...
//	s3-endpoint: http://minio:9000
//	run:
//	  db: /var/lib/stalwart
//	  poll: 500ms
//
// Values may use ${VAR} and ${VAR:-default}; $$ is a literal $. A key no
// command knows is an error naming it, so a typo is never silently
// ignored.
package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"

	"go.yaml.in/yaml/v3"
)

// File is a parsed configuration file. Values are kept as written;
// ${VAR} references are expanded when a value is used, so a reference
// only the restore section uses does not have to be set for run.
type File struct {
	Path string
	root *section
}

// section is one level of the file: the top level, or a command's
// section. path is its dotted name ("" at the top, "run", ...), line the
// line of its key.
type section struct {
	path   string
	line   int
	values map[string]*entry
	subs   map[string]*section
}

// entry is one key with a scalar or list value.
type entry struct {
	key   string   // dotted: "poll", "run.poll"
	raw   string   // the scalar
	items []string // the items of a list (nil for a scalar)
	line  int
}

// Load reads and parses a configuration file. It checks the file's shape
// (keys are names, values are scalars, lists of scalars or sections) but
// not the key names, which depend on the commands: see Check.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load on bytes already read; path names the file in errors.
func Parse(path string, data []byte) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	f := &File{Path: path, root: &section{values: map[string]*entry{}, subs: map[string]*section{}}}
	if doc.Kind == 0 { // empty file
		return f, nil
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" { // only comments
		return f, nil
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s:%d: want a mapping of keys to values (key: value), not a %s", path, top.Line, kindName(top))
	}
	if err := f.parseSection(f.root, top); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) parseSection(s *section, m *yaml.Node) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return fmt.Errorf("%s:%d: a key must be a plain name", f.Path, k.Line)
		}
		key := k.Value
		dotted := join(s.path, key)
		if key == "<<" {
			return fmt.Errorf("%s:%d: merge keys (<<) are not supported: a top-level key already applies to every command that has the flag", f.Path, k.Line)
		}
		if e, ok := s.values[key]; ok {
			return fmt.Errorf("%s:%d: %s already defined at line %d", f.Path, k.Line, dotted, e.line)
		}
		if sub, ok := s.subs[key]; ok {
			return fmt.Errorf("%s:%d: %s already defined at line %d", f.Path, k.Line, dotted, sub.line)
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		switch v.Kind {
		case yaml.MappingNode:
			sub := &section{path: dotted, line: k.Line, values: map[string]*entry{}, subs: map[string]*section{}}
			if err := f.parseSection(sub, v); err != nil {
				return err
			}
			s.subs[key] = sub
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				return fmt.Errorf("%s:%d: %s has no value: write %s: \"\" for an empty one, or remove the line", f.Path, k.Line, dotted, key)
			}
			s.values[key] = &entry{key: dotted, raw: v.Value, line: k.Line}
		case yaml.SequenceNode:
			items := make([]string, 0, len(v.Content)) // non-nil: a list, even empty
			for _, it := range v.Content {
				if it.Kind == yaml.AliasNode {
					it = it.Alias
				}
				if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
					return fmt.Errorf("%s:%d: %s: list items must be plain values", f.Path, it.Line, dotted)
				}
				items = append(items, it.Value)
			}
			s.values[key] = &entry{key: dotted, items: items, line: k.Line}
		default:
			return fmt.Errorf("%s:%d: %s: unsupported value (%s)", f.Path, k.Line, dotted, kindName(v))
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		return "single value"
	}
	return "value"
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// Schema says which keys are valid at one level of the file: the flags a
// key may name there, and the sections (subcommands) below it. At the top
// level Flags holds every flag of every command.
type Schema struct {
	Flags    map[string]bool
	Sections map[string]*Schema
	// What names the level's command in errors, e.g. "tailer run"; ""
	// at the top level, where a key may name any command's flag.
	What string
}

// Check reports every key the schema does not know, each with its line
// and, when one is close, the key that was probably meant.
func (f *File) Check(s *Schema) error {
	var probs []problem
	f.check(f.root, s, &probs)
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].line < probs[j].line })
	errs := make([]error, len(probs))
	for i, p := range probs {
		errs[i] = p.err
	}
	return errors.Join(errs...)
}

// problem is an error at a line of the file, so Check reports in order.
type problem struct {
	line int
	err  error
}

func (f *File) check(sec *section, s *Schema, errs *[]problem) {
	for _, key := range sortedKeys(sec.values) {
		e := sec.values[key]
		switch {
		case s.Flags[key]:
		case key == "config":
			*errs = append(*errs, problem{e.line, fmt.Errorf("%s:%d: %s: a config file cannot name another one (use --config or TAILER_CONFIG)", f.Path, e.line, e.key)})
		case s.Sections[key] != nil:
			*errs = append(*errs, problem{e.line, fmt.Errorf("%s:%d: %s is a command, not a flag: put its settings in a section (%s: on a line of its own, then indented key: value lines)", f.Path, e.line, e.key, key)})
		case s.What == "":
			*errs = append(*errs, problem{e.line, fmt.Errorf("%s:%d: unknown key %s: no command has --%s%s", f.Path, e.line, e.key, key, suggest(key, s))})
		default:
			*errs = append(*errs, problem{e.line, fmt.Errorf("%s:%d: unknown key %s: %s has no --%s%s", f.Path, e.line, e.key, s.What, key, suggest(key, s))})
		}
	}
	for _, key := range sortedKeys(sec.subs) {
		sub := sec.subs[key]
		if s.Sections[key] == nil && s.Flags[key] {
			*errs = append(*errs, problem{sub.line, fmt.Errorf("%s:%d: %s takes a value (key: value), not a mapping", f.Path, sub.line, sub.path)})
			continue
		}
		if s.Sections[key] == nil {
			what := s.What
			if what == "" {
				what = "tailer"
			}
			*errs = append(*errs, problem{sub.line, fmt.Errorf("%s:%d: unknown section %s: %s has no command %q%s", f.Path, sub.line, sub.path, what, key, suggest(key, s))})
			continue
		}
		f.check(sub, s.Sections[key], errs)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// suggest names the flag or section closest to a misspelt key.
func suggest(key string, s *Schema) string {
	best, bestD := "", 3
	for _, cands := range [][]string{sortedKeys(s.Flags), sortedKeys(s.Sections)} {
		for _, c := range cands {
			if d := distance(key, c); d < bestD {
				best, bestD = c, d
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// distance is the Levenshtein distance, for suggestions.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Value is a key found for a flag.
type Value struct {
	Raw   string   // a scalar as written, before ${VAR} expansion
	Items []string // or a list's items (List is true)
	List  bool
	Key   string // dotted key: "poll", "run.poll"
	Where string // "FILE:LINE (KEY)", for messages
}

// Lookup finds the key for flag as seen by the command at path (its
// names below the root, e.g. ["run"]): the deepest section first, then
// the levels above it, then the top level.
func (f *File) Lookup(path []string, flag string) (Value, bool) {
	if f == nil {
		return Value{}, false
	}
	chain := []*section{f.root}
	s := f.root
	for _, name := range path {
		if s = s.subs[name]; s == nil {
			break
		}
		chain = append(chain, s)
	}
	for _, s := range slices.Backward(chain) {
		if e := s.values[flag]; e != nil {
			return Value{Raw: e.raw, Items: e.items, List: e.items != nil, Key: e.key, Where: fmt.Sprintf("%s:%d (%s)", f.Path, e.line, e.key)}, true
		}
	}
	return Value{}, false
}

// Keys lists every dotted key the file sets, sorted (for tests and the
// example file's check).
func (f *File) Keys() []string {
	var out []string
	var walk func(*section)
	walk = func(s *section) {
		for _, e := range s.values {
			out = append(out, e.key)
		}
		for _, sub := range s.subs {
			walk(sub)
		}
	}
	walk(f.root)
	sort.Strings(out)
	return out
}
