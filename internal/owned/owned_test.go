package owned

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTempDirRemovesOnlyWhatItCreated(t *testing.T) {
	tests := []struct {
		name   string
		parent func(base string) string // the parent given
		keep   []string                 // paths that must survive Remove
		gone   []string                 // paths that must not
		plant  string                   // a file put into a created parent before Remove
	}{
		{name: "existing parent with an unrelated file", parent: func(b string) string {
			os.WriteFile(filepath.Join(b, "unrelated"), []byte("x"), 0o644)
			return b
		}, keep: []string{".", "unrelated"}},
		{name: "existing empty parent", parent: func(b string) string { return b }, keep: []string{"."}},
		{name: "missing parents are created and removed", parent: func(b string) string { return filepath.Join(b, "a", "b") },
			keep: []string{"."}, gone: []string{"a"}},
		{name: "a created parent that got other content stays", parent: func(b string) string { return filepath.Join(b, "a", "b") },
			plant: "a/other", keep: []string{".", "a/other"}, gone: []string{"a/b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			d, err := NewTempDir(tc.parent(base), "work-")
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(d.Path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != DirMode {
				t.Errorf("mode of %s = %v, want %v", d.Path, st.Mode().Perm(), DirMode)
			}
			if err := os.WriteFile(filepath.Join(d.Path, "f"), []byte("mail"), FileMode); err != nil {
				t.Fatal(err)
			}
			if tc.plant != "" {
				if err := os.WriteFile(filepath.Join(base, tc.plant), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path := d.Path
			if err := d.Remove(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("%s still there after Remove (err %v)", path, err)
			}
			for _, k := range tc.keep {
				if _, err := os.Stat(filepath.Join(base, k)); err != nil {
					t.Errorf("%s was removed: %v", k, err)
				}
			}
			for _, g := range tc.gone {
				if _, err := os.Stat(filepath.Join(base, g)); !os.IsNotExist(err) {
					t.Errorf("%s created by NewTempDir is still there (err %v)", g, err)
				}
			}
		})
	}
}

func TestMkdirAllLeavesExistingModes(t *testing.T) {
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	made, err := MkdirAll(filepath.Join(base, "x", "y"))
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 2 || made[0] != filepath.Join(base, "x", "y") || made[1] != filepath.Join(base, "x") {
		t.Errorf("made = %v, want [x/y x] under %s", made, base)
	}
	for p, want := range map[string]os.FileMode{base: 0o755, filepath.Join(base, "x"): DirMode, filepath.Join(base, "x", "y"): DirMode} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("mode of %s = %v, want %v", p, st.Mode().Perm(), want)
		}
	}
	if made, err := MkdirAll(base); err != nil || len(made) != 0 {
		t.Errorf("MkdirAll of an existing dir made %v (err %v), want nothing", made, err)
	}
	f := filepath.Join(base, "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := MkdirAll(filepath.Join(f, "sub")); err == nil {
		t.Error("MkdirAll below a file succeeded")
	}
}
