package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/integration/loadgen"
)

// runCLI runs tailer with args and returns stdout and the error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs(append(args, "--log-format", "text", "--log-level", "warn"))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestFormatStalwartCLI: export and restore write the same 19 files with
// --format stalwart and print the summary; flag mix-ups are refused.
func TestFormatStalwartCLI(t *testing.T) {
	tmp := t.TempDir()
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(tmp, "db"), Seed: 5, Accounts: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Run(context.Background(), 300, 0); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(tmp, "live")
	stdout, err := runCLI(t, "export", "--db", g.Dir(), "--format", "stalwart", "--out", live)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"schema 6, 19 files", "subspace_t", "stalwart --config CONFIG --import " + live} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("export summary lacks %q:\n%s", want, stdout)
		}
	}
	bucket := "file://" + filepath.Join(tmp, "bucket")
	if _, err := runCLI(t, "export", "--db", g.Dir(), "--replica", bucket); err != nil {
		t.Fatal(err)
	}
	past := filepath.Join(tmp, "past")
	if stdout, err = runCLI(t, "restore", "--replica", bucket, "--format", "stalwart", "--out", past); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "schema 6, 19 files") {
		t.Fatalf("restore summary:\n%s", stdout)
	}
	// Same store, same sequence number: the same bytes.
	files, _ := filepath.Glob(filepath.Join(live, "subspace_*"))
	if len(files) != 19 {
		t.Fatalf("%d files in %s", len(files), live)
	}
	for _, f := range files {
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(past, filepath.Base(f)))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s differs between the live export and the restore (%v)", filepath.Base(f), err)
		}
	}
	for _, args := range [][]string{
		{"export", "--db", g.Dir(), "--format", "nope", "--out", filepath.Join(tmp, "x")},
		{"export", "--db", g.Dir(), "--out", filepath.Join(tmp, "x")},
		{"export", "--db", g.Dir(), "--format", "stalwart", "--replica", bucket, "--out", filepath.Join(tmp, "x")},
		{"export", "--db", g.Dir(), "--format", "stalwart"},
		{"export", "--db", g.Dir(), "--format", "stalwart", "--out", live},
		{"restore", "--replica", bucket, "--format", "stalwart", "--to", filepath.Join(tmp, "x")},
		{"restore", "--replica", bucket, "--format", "stalwart", "--out", past},
	} {
		if _, err := runCLI(t, args...); err == nil {
			t.Errorf("tailer %s: no error", strings.Join(args, " "))
		}
	}
}
