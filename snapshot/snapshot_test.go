package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/store"
)

// primary makes a small store with a few keys in family n, flushed and
// with some left in the WAL, and closes it.
func primary(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	st, err := store.OpenWritable(dir, []string{"n"}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	for _, k := range []string{"a", "b", "c"} {
		if err := st.DB.PutCF(wo, st.Handle("n"), []byte(k), []byte("mail "+k)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestTakeRefusesAnExistingDir: Take never writes into, or removes, a
// directory that is there already.
func TestTakeRefusesAnExistingDir(t *testing.T) {
	db := primary(t)
	dir := filepath.Join(t.TempDir(), "snap")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unrelated := filepath.Join(dir, "unrelated")
	if err := os.WriteFile(unrelated, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Take(context.Background(), db, dir, nil)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	if _, err := os.Stat(unrelated); err != nil {
		t.Fatalf("the unrelated file is gone: %v", err)
	}
}

// TestTakeIsPrivate: the snapshot holds links to the store's files (mail):
// its directory and the parents Take creates are owned.DirMode, the files
// it writes owned.FileMode; an existing parent keeps its mode.
func TestTakeIsPrivate(t *testing.T) {
	db := primary(t)
	scratch := t.TempDir()
	if err := os.Chmod(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(scratch, "snapshots", "one")
	f, err := OpenFrozen(context.Background(), db, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]os.FileMode{scratch: 0o755, filepath.Dir(dir): owned.DirMode, dir: owned.DirMode}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if kind := classify(e.Name()); kind == copyWhole || e.Name() == "CURRENT" || len(e.Name()) > 9 && e.Name()[:9] == "MANIFEST-" {
			want[filepath.Join(dir, e.Name())] = owned.FileMode
		}
	}
	if len(want) < 6 {
		t.Fatalf("snapshot holds %v: want CURRENT, IDENTITY and a MANIFEST copied", entries)
	}
	for p, m := range want {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != m {
			t.Errorf("mode of %s = %v, want %v", p, st.Mode().Perm(), m)
		}
	}
}
