package restore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/replicatest"
)

// TestRestoreKeepsTheWorkDir: a --work directory the operator names is
// never removed, nor anything in it, whether the restore succeeds or
// fails before or after the target exists; only restore's own directory
// inside it goes.
func TestRestoreKeepsTheWorkDir(t *testing.T) {
	r := replicatest.Build(t, replicatest.Spec{Tx: 12, ExportsAfter: []int{4}, PerSegment: 4})
	tests := []struct {
		name    string
		target  Target
		cancel  bool // cancel once the load is done: the replay then fails
		wantErr string
	}{
		{name: "success"},
		{name: "fails before the target exists", target: Target{Seq: 1, HasSeq: true}, wantErr: "before the oldest export"},
		{name: "fails after the target exists", cancel: true, wantErr: context.Canceled.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			unrelated := filepath.Join(work, "unrelated")
			if err := os.WriteFile(unrelated, []byte("not tailer's"), 0o644); err != nil {
				t.Fatal(err)
			}
			to := filepath.Join(t.TempDir(), "db")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := Options{Replica: r.R, To: to, Work: work, Target: tc.target}
			if tc.cancel {
				opts.Progress = func(phase string, done, total int64) {
					if phase == "load" && done == total {
						cancel()
					}
				}
			}
			_, err := Run(ctx, opts)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if _, serr := os.Stat(to); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("a failed restore left %s behind (%v)", to, serr)
				}
			}
			if b, err := os.ReadFile(unrelated); err != nil || string(b) != "not tailer's" {
				t.Fatalf("the unrelated file in --work is gone or changed: %q, %v", b, err)
			}
			entries, _ := os.ReadDir(work)
			if len(entries) != 1 {
				t.Errorf("--work holds %d entries after the restore, want only the unrelated file: %v", len(entries), entries)
			}
		})
	}
}

// TestRestoreDefaultWorkDirGoes: the default work directory beside the
// target is restore's own and removed afterwards.
func TestRestoreDefaultWorkDirGoes(t *testing.T) {
	r := replicatest.Build(t, replicatest.Spec{Tx: 6, ExportsAfter: []int{2}, PerSegment: 2})
	parent := t.TempDir()
	if _, err := Run(context.Background(), Options{Replica: r.R, To: filepath.Join(parent, "db")}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 || entries[0].Name() != "db" {
		t.Errorf("beside the target: %v, want only db", entries)
	}
}

// TestRestoreTargetMode: a target restore creates is private to the user
// running it (it holds mail); an existing empty one keeps its mode.
func TestRestoreTargetMode(t *testing.T) {
	r := replicatest.Build(t, replicatest.Spec{Tx: 6, ExportsAfter: []int{2}, PerSegment: 2})
	tests := []struct {
		name     string
		existing bool
		want     os.FileMode
	}{
		{"created by restore", false, owned.DirMode},
		{"existing empty directory", true, 0o755},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			to := filepath.Join(t.TempDir(), "db")
			if tc.existing {
				if err := os.Mkdir(to, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(to, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Run(context.Background(), Options{Replica: r.R, To: to}); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(to)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tc.want {
				t.Errorf("mode of %s = %v, want %v", to, st.Mode().Perm(), tc.want)
			}
		})
	}
}

// TestRestoreLeavesOthersFilesInTarget: a file that appears in an empty
// target while restore downloads is not restore's: restore refuses to
// write beside it, and it is still there afterwards.
func TestRestoreLeavesOthersFilesInTarget(t *testing.T) {
	r := replicatest.Build(t, replicatest.Spec{Tx: 6, ExportsAfter: []int{2}, PerSegment: 2})
	to := t.TempDir()
	planted := filepath.Join(to, "someone-elses")
	_, err := Run(context.Background(), Options{Replica: r.R, To: to, Progress: func(phase string, _, _ int64) {
		if phase == "download" {
			os.WriteFile(planted, []byte("x"), 0o644)
		}
	}})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v, want a refusal of the no longer empty target", err)
	}
	if _, err := os.Stat(planted); err != nil {
		t.Fatalf("the file put into the target is gone: %v", err)
	}
}
