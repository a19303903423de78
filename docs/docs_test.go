// Package docs holds the repository's design documents; its tests check
// that they stay true to the tree: every package is on the map, every
// link resolves, and nothing refers to files outside the repository.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/docexample"
)

// goPackages lists the repository's directories holding non-test Go
// files, relative to root, slash-separated.
func goPackages(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			rel, err := filepath.Rel(root, filepath.Dir(p))
			if err != nil {
				return err
			}
			seen[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// tableRow is a row of architecture.md's package table.
var tableRow = regexp.MustCompile("^\\| `([a-z0-9/_-]+)` \\|")

// TestArchitectureNamesEveryPackage checks that the package table of
// docs/architecture.md names every package of the tree, and nothing else.
func TestArchitectureNamesEveryPackage(t *testing.T) {
	doc := docexample.Load(t, "architecture.md")
	root, err := docexample.Root()
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, l := range strings.Split(doc.Text, "\n") {
		if m := tableRow.FindStringSubmatch(l); m != nil {
			named = append(named, m[1])
		}
	}
	pkgs := goPackages(t, root)
	for _, p := range pkgs {
		if !slices.Contains(named, p) {
			t.Errorf("architecture.md does not name the package %s: add a row saying its one job", p)
		}
	}
	for _, n := range named {
		if !slices.Contains(pkgs, n) {
			t.Errorf("architecture.md names %s, which is no package of the repository", n)
		}
	}
}

// mdLink matches an inline markdown link's target.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// slug is GitHub's anchor for a heading.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(text string) map[string]bool {
	out := map[string]bool{}
	inFence := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "```") {
			inFence = !inFence
		}
		if !inFence && strings.HasPrefix(l, "#") {
			out[slug(strings.TrimLeft(l, "#"))] = true
		}
	}
	return out
}

// TestDocLinksResolve checks every relative link of the documents and of
// the README: the file exists and, for a markdown file, so does the
// heading an anchor names.
func TestDocLinksResolve(t *testing.T) {
	root, err := docexample.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"docs/design.md", "docs/architecture.md", "docs/benchmarks.md", "README.md"} {
		src := filepath.Join(root, name)
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := src
			if file != "" {
				path = filepath.Join(filepath.Dir(src), filepath.FromSlash(file))
			}
			rel, _ := filepath.Rel(root, path)
			if strings.HasPrefix(rel, "..") {
				t.Errorf("%s links to %s, outside the repository", name, target)
				continue
			}
			tb, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s links to %s: %v", name, target, err)
				continue
			}
			if anchor != "" && strings.HasSuffix(path, ".md") && !anchors(string(tb))[anchor] {
				t.Errorf("%s links to %s: no such heading in %s", name, target, rel)
			}
		}
	}
}

// TestNothingRefersOutsideTheRepository checks that no file points a
// reader at the design notes the project started from, which live outside
// the repository: docs/ replaces them.
func TestNothingRefersOutsideTheRepository(t *testing.T) {
	root, err := docexample.Root()
	if err != nil {
		t.Fatal(err)
	}
	// Spelled in pieces so this file does not match itself.
	bad := []string{"shared/" + "design", "../" + "shared", "formats" + ".md", "stalwart-store" + ".md"}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.Size() > 4<<20 {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		for _, s := range bad {
			if strings.Contains(string(b), s) {
				t.Errorf("%s refers to %q, outside the repository: point it at docs/design.md or docs/architecture.md", rel, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
