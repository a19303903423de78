package verify

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tailer-backup/tailer/internal/replicatest"
)

// TestVerifyKeepsTheTempDir: verify (deep too) works in a directory of its
// own inside --temp and removes only that: --temp and what else it holds
// stay.
func TestVerifyKeepsTheTempDir(t *testing.T) {
	r := replicatest.Build(t, spec)
	for _, deep := range []bool{false, true} {
		temp := t.TempDir()
		unrelated := filepath.Join(temp, "unrelated")
		if err := os.WriteFile(unrelated, []byte("not tailer's"), 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := Run(context.Background(), Options{Replica: r.R, Deep: deep, Temp: temp})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) > 0 {
			t.Fatalf("deep %v: problems %v", deep, rep.Problems)
		}
		if b, err := os.ReadFile(unrelated); err != nil || string(b) != "not tailer's" {
			t.Fatalf("deep %v: the unrelated file in --temp is gone or changed: %q, %v", deep, b, err)
		}
		if entries, _ := os.ReadDir(temp); len(entries) != 1 {
			t.Errorf("deep %v: --temp holds %v after verify, want only the unrelated file", deep, entries)
		}
	}
}
