// Package docexample reads the examples of the design documents in docs/
// for the tests that check them against the code. An example is a fenced
// block right after a line "<!-- example: NAME -->", so a test finds it by
// name, and the document cannot drift from what the code writes (a key
// shape, a JSON field, a file name) without that test failing.
package docexample

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// Doc is one document and its named examples.
type Doc struct {
	Path     string
	Text     string
	Examples map[string]string // name -> the fenced block's lines, without the fences
}

// Parse finds the named examples of a markdown text. A marker not
// followed by a fenced block, an unterminated block or a name used twice
// is an error: a test looking for the example would otherwise pass
// vacuously or check the wrong block.
func Parse(text string) (map[string]string, error) {
	marker := regexp.MustCompile(`^<!-- example: ([A-Za-z0-9._-]+) -->$`) // names the fenced block after it
	lines := strings.Split(text, "\n")
	out := map[string]string{}
	for i := 0; i < len(lines); i++ {
		m := marker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		name := m[1]
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("line %d: example %q is named twice", i+1, name)
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			return nil, fmt.Errorf("line %d: example %q is not followed by a fenced block", i+1, name)
		}
		var body []string
		end := -1
		for j := i + 2; j < len(lines); j++ {
			if strings.HasPrefix(lines[j], "```") {
				end = j
				break
			}
			body = append(body, lines[j])
		}
		if end < 0 {
			return nil, fmt.Errorf("line %d: the block of example %q is not closed", i+1, name)
		}
		out[name] = strings.Join(body, "\n")
		i = end
	}
	return out, nil
}

// Root returns the repository's root: the nearest directory at or above
// the working directory (a test's package directory) holding go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// Load reads docs/<name> of the repository and its examples, failing t
// if it cannot.
func Load(t testing.TB, name string) Doc {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "docs", name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := Parse(string(b))
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return Doc{Path: p, Text: string(b), Examples: ex}
}

// Example returns the named example, failing t when the document has none.
func (d Doc) Example(t testing.TB, name string) string {
	t.Helper()
	ex, ok := d.Examples[name]
	if !ok {
		t.Fatalf("%s has no example %q (a block after <!-- example: %s -->)", d.Path, name, name)
	}
	return ex
}

// Lines returns the first field of every non-empty line of the named
// example: a key, a path or a hex string, with what follows it on the
// line being commentary.
func (d Doc) Lines(t testing.TB, name string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(d.Example(t, name), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

// Flat is the document's text with every run of white space reduced to
// one space, so a test can look for a phrase the document wraps.
func (d Doc) Flat() string { return strings.Join(strings.Fields(d.Text), " ") }

// CheckJSON checks that the named example is exactly what encoding/json
// writes (two-space indent) for the value it describes: it decodes into
// v (a pointer to the code's type), refusing members the type does not
// have, writes it again and compares, and checks that the example names
// every JSON member of the type, including those the encoder omits when
// empty, so a field added to the code is documented too.
func (d Doc) CheckJSON(t testing.TB, name string, v any) {
	t.Helper()
	ex := strings.TrimSpace(d.Example(t, name))
	dec := json.NewDecoder(strings.NewReader(ex))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("example %s does not decode into %T: %v", name, v, err)
	}
	again, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, []byte(ex)) {
		t.Fatalf("example %s is not what the code writes for it:\n%s\nwant (from the document):\n%s", name, again, ex)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(ex), &members); err != nil {
		t.Fatalf("example %s: %v", name, err)
	}
	for _, f := range JSONFields(reflect.TypeOf(v).Elem()) {
		if _, ok := members[f]; !ok {
			t.Errorf("example %s lacks the member %q of %T: document it", name, f, v)
		}
	}
}

// JSONFields lists the JSON member names of a struct type as
// encoding/json names them, embedded structs flattened; "-" fields and
// unexported ones are left out.
func JSONFields(typ reflect.Type) []string {
	var out []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case name == "-":
			continue
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, JSONFields(f.Type)...)
			continue
		case !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}
