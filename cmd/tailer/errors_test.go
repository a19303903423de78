package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/retention"
	"github.com/tailer-backup/tailer/uploader"
)

// TestPhrase: errors of library packages, which name settings in their
// own words, reach the operator naming tailer's flags, and stay what they
// were for errors.Is.
func TestPhrase(t *testing.T) {
	_, noDB := agent.New(agent.Config{})
	_, noReplica := agent.New(agent.Config{DB: t.TempDir()})
	db := t.TempDir()
	file, err := uploader.Open(t.Context(), "file://"+t.TempDir(), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, scratchInside := agent.New(agent.Config{DB: db, Scratch: filepath.Join(db, "s"), Replica: file})
	missing := filepath.Join(t.TempDir(), "nope")
	_, noTo := restore.Run(t.Context(), restore.Options{})
	held := errors.New("held")
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"agent: no DB", noDB, "no --db given: point it at Stalwart's RocksDB directory"},
		{"agent: no replica", noReplica, "no --replica given: e.g. s3://bucket/stalwart or file:///backups/stalwart"},
		{"agent: scratch inside", fmt.Errorf("run: %w", scratchInside), "run: --scratch " + filepath.Join(db, "s") + " is inside the primary's directory " + db},
		{"store: missing", store.CheckDir(missing), "RocksDB directory " + missing + " does not exist: point --db at Stalwart's store path (RocksDb.path in its config)"},
		{"retention: no rule", retention.Policy{}.Validate(), "no retention rule: give a maximum age (--retention 7d) and/or a number of exports to keep (--retain-exports N)"},
		{"restore: no target", noTo, "no --to given: name a new directory to restore into"},
		{"a hint inside a message", fmt.Errorf("%w: stop it, or %w", held, &setting.Error{Key: "ForceTakeover", Name: "Options.Force", Before: "pass ", After: " if it is gone"}),
			"held: stop it, or pass --force-takeover if it is gone"},
		{"no setting", held, "held"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.err == nil {
				t.Fatal("the library returned no error")
			}
			got := phrase(c.err)
			if !strings.HasPrefix(got.Error(), c.want) {
				t.Fatalf("phrased %q\nwant it to start %q", got, c.want)
			}
			if !errors.Is(got, c.err) {
				t.Fatal("the phrased error does not wrap the library's")
			}
		})
	}
}

// TestEverySettingHasACLIName: each setting a library names in an error
// (setting.Error's Key in the source) has a flag name in cliNames, so no
// library wording reaches the operator unphrased.
func TestEverySettingHasACLIName(t *testing.T) {
	keyRE := regexp.MustCompile(`setting\.(?:Missing|Bad)\("([A-Za-z]+)"|Key: "([A-Za-z]+)"`)
	seen := 0
	walkGo(t, func(path string, src []byte) {
		if !strings.Contains(string(src), "internal/setting\"") {
			return
		}
		for _, m := range keyRE.FindAllStringSubmatch(string(src), -1) {
			key := m[1] + m[2]
			seen++
			if _, ok := cliNames[key]; !ok {
				t.Errorf("%s names setting %q in an error, which cliNames (errors.go) does not phrase", path, key)
			}
		}
	})
	if seen == 0 {
		t.Fatal("found no setting in the source: the scan is broken")
	}
}

// allowedFlagText are the places outside cmd/ where a string may name a
// CLI flag, and why: none of them is an error a library returns.
var allowedFlagText = []struct{ path, why string }{
	{"internal/config/", "the CLI's own configuration resolution (flags, TAILER_*, config files): flags are its terms"},
	{"internal/benchflags/", "defines the bench command's flags"},
	{"internal/minioserver/", "the argv of the minio process it starts"},
	{"bench/", "the argv of the tailer binary it measures, and its report"},
	{"agent/metrics.go", "metric help texts for the operator of tailer run, who set those flags"},
}

// allowedFlagLines are single strings outside cmd/ that may name a flag:
// text tailer run shows its operator (readiness reasons), not errors.
var allowedFlagLines = []string{
	"free space below --min-free",
	"--ready-max-lag",
	"Stalwart's --import", // Stalwart's flag, not tailer's
}

// TestNoFlagNamesInLibraryErrors: outside cmd/, no string literal of a
// non-test Go file names a CLI flag ("--name"), except in log calls (logs
// of tailer run may advise with flags) and the allow-listed places.
// Libraries name settings in their own words (package setting) and
// cmd/tailer phrases them with flags.
func TestNoFlagNamesInLibraryErrors(t *testing.T) {
	flagRE := regexp.MustCompile(`(^|[^-\w])--[a-z][a-z-]+`)
	logMethods := map[string]bool{"Debug": true, "Info": true, "Warn": true, "Error": true}
	files := 0
	walkGo(t, func(path string, src []byte) {
		if strings.HasPrefix(path, "cmd/") || strings.HasSuffix(path, "_test.go") {
			return
		}
		for _, a := range allowedFlagText {
			if strings.HasPrefix(path, a.path) {
				return
			}
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		var inLog []ast.Node // log calls enclosing the current node
		ast.Inspect(f, func(n ast.Node) bool {
			if n == nil {
				return true
			}
			for len(inLog) > 0 && n.Pos() >= inLog[len(inLog)-1].End() {
				inLog = inLog[:len(inLog)-1]
			}
			if c, ok := n.(*ast.CallExpr); ok {
				if sel, ok := c.Fun.(*ast.SelectorExpr); ok && logMethods[sel.Sel.Name] {
					inLog = append(inLog, c)
				}
			}
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || len(inLog) > 0 {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !flagRE.MatchString(s) {
				return true
			}
			for _, allowed := range allowedFlagLines {
				if strings.Contains(s, allowed) {
					return true
				}
			}
			t.Errorf("%s: %q names a CLI flag: return a setting.Error (or a typed error) and phrase it in cmd/tailer/errors.go", fset.Position(lit.Pos()), s)
			return true
		})
	})
	if files < 50 {
		t.Fatalf("scanned %d library files: the scan is broken", files)
	}
}

// walkGo calls fn with every Go file of the module (path relative to its
// root), skipping testdata.
func walkGo(t *testing.T, fn func(path string, src []byte)) {
	t.Helper()
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fn(filepath.ToSlash(rel), src)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
