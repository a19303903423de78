package durable

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "gone")
	if err := SyncDir(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("SyncDir of a missing dir: %v, want ErrNotExist", err)
	}
}

// TestWriteFile: the file is replaced whole, 0600, and no temporary file
// stays behind, with a pattern or a fixed temporary name.
func TestWriteFile(t *testing.T) {
	for _, temp := range []string{".tmp-*", "state.tmp"} {
		t.Run(temp, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "state")
			for _, data := range []string{"first", "second, longer"} {
				if err := WriteFile(p, []byte(data), temp); err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(p)
				if err != nil || string(got) != data {
					t.Fatalf("read back %q, %v; want %q", got, err, data)
				}
			}
			fi, err := os.Stat(p)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v, %v", fi.Mode(), err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Fatalf("left in the directory: %v", ents)
			}
			if err := WriteFile(filepath.Join(dir, "missing", "x"), nil, temp); err == nil {
				t.Fatal("writing into a missing directory succeeded")
			}
		})
	}
}
