package main

import (
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/progress"
	"github.com/tailer-backup/tailer/internal/replicatest"
)

// TestProgressLogged: without a terminal, export and restore log their
// progress (what, done, total) and a final record per phase.
func TestProgressLogged(t *testing.T) {
	tmp := t.TempDir()
	db := filepath.Join(tmp, "db")
	newStore(t, db)
	code, stdout, stderr := runTailer(t, cliCase{args: []string{"export", "--db", db, "--scratch", filepath.Join(tmp, "scratch"), "--replica", "file://" + filepath.Join(tmp, "bucket")}})
	if code != 0 {
		t.Fatalf("export: %d\n%s%s", code, stdout, stderr)
	}
	wantDone(t, stderr, "export")

	r := replicatest.Build(t, replicatest.Spec{Tx: 8, PerSegment: 4})
	code, stdout, stderr = runTailer(t, cliCase{args: []string{"restore", "--replica", r.URL, "--to", filepath.Join(tmp, "restored")}})
	if code != 0 {
		t.Fatalf("restore: %d\n%s%s", code, stdout, stderr)
	}
	wantDone(t, stderr, "download")
	wantDone(t, stderr, "load (keys)")
}

func wantDone(t *testing.T, stderr, what string) {
	t.Helper()
	for _, l := range strings.Split(stderr, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) != nil {
			continue
		}
		if rec["msg"] == "progress: done" && rec["what"] == what {
			if rec["done"] == nil || rec["rate"] == nil {
				t.Fatalf("progress record without numbers: %s", l)
			}
			if total, ok := rec["total"].(string); ok && what != "export" && total != rec["done"] {
				t.Fatalf("%s finished at %v of %v", what, rec["done"], total)
			}
			return
		}
	}
	t.Fatalf("no final progress record for %s in:\n%s", what, stderr)
}

// TestProgressOnTerminal: on a terminal restore draws one line per phase
// in place and log records do not break into it.
func TestProgressOnTerminal(t *testing.T) {
	var term bytes.Buffer
	line := progress.NewLine(&term)
	defer func(f func() io.Writer) { progressTerminal = f }(progressTerminal)
	progressTerminal = func() io.Writer { return line }
	ph := newPhases(nil)
	ph.update("download", 0, 100)
	ph.update("download", 100, 100)
	ph.update("load", 5, 10)
	ph.update("load", 10, 10)
	ph.finish(false)
	out := term.String()
	for _, want := range []string{"download 100 B / 100 B 100%", "load (keys) 10 / 10 100%"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output %q lacks %q", out, want)
		}
	}
	if strings.Count(out, "\n") != 2 {
		t.Errorf("want one finished line per phase: %q", out)
	}
}
