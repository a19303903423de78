package docs

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/docexample"
)

// module is the import path prefix of the repository's packages.
const module = "github.com/tailer-backup/tailer/"

// orchestration lists the packages that do I/O orchestration: they open
// live stores, talk to replicas, hold leases or run commands. Format
// packages must not depend on any of them, not even indirectly.
var orchestration = []string{
	"agent", "restore", "secondary", "snapshot", "walpin", "uploader", "blobship",
	"lease", "export", "compaction", "retention", "verify", "dumpsource",
	"internal/catalog", "internal/report", "cmd/tailer",
}

// layerRules is docs/architecture.md's "Layers" section as a table: each
// package and what it must not import, directly or through another
// package of the repository.
var layerRules = []struct {
	pkg       string
	forbidden []string
	why       string
}{
	{"segment", orchestration, "the .tseg/.texp format: bytes in, bytes out"},
	{"stalwartfmt", orchestration, "writes a Stalwart dump from a static store; where the store comes from is dumpsource's"},
	{"internal/catalog", []string{
		"lease", "changelog", "agent", "restore", "secondary", "snapshot", "walpin", "export",
		"compaction", "retention", "verify", "dumpsource", "internal/report", "cmd/tailer",
	}, "lists a replica into generations; command-level reports are internal/report's"},
}

// TestLayers checks layerRules against the tree with go/build (no go
// command, no new dependency): a package that starts importing an
// orchestration package fails here with the chain of imports that does it.
func TestLayers(t *testing.T) {
	root, err := docexample.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range layerRules {
		for _, f := range append([]string{rule.pkg}, rule.forbidden...) {
			if st, err := os.Stat(filepath.Join(root, filepath.FromSlash(f))); err != nil || !st.IsDir() {
				t.Errorf("layer rule for %s names %s, which is no package directory: update layerRules", rule.pkg, f)
			}
		}
		via, err := moduleDeps(root, rule.pkg)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rule.forbidden {
			if _, ok := via[f]; ok {
				t.Errorf("%s imports %s (%s); it must not (%s)", rule.pkg, f, chain(via, rule.pkg, f), rule.why)
			}
		}
	}
}

// moduleDeps walks the non-test imports of pkg (a directory relative to
// root) through the repository's own packages and returns, for each one
// reached, the package that imported it first.
func moduleDeps(root, pkg string) (map[string]string, error) {
	via := map[string]string{}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		bp, err := build.Default.ImportDir(filepath.Join(root, filepath.FromSlash(p)), 0)
		if err != nil {
			return nil, err
		}
		for _, imp := range bp.Imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok || dep == pkg {
				continue
			}
			if _, seen := via[dep]; !seen {
				via[dep] = p
				queue = append(queue, dep)
			}
		}
	}
	return via, nil
}

// chain spells the imports that lead from pkg to dep.
func chain(via map[string]string, pkg, dep string) string {
	path := []string{dep}
	for p := dep; p != pkg; {
		p = via[p]
		path = append(path, p)
	}
	slices.Reverse(path)
	return strings.Join(path, " → ")
}
