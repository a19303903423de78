package safepath

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestJoin(t *testing.T) {
	root := filepath.Join(t.TempDir(), "work")
	tests := []struct {
		rel  string
		want string // "" when refused
	}{
		{"generations/g/segments/a.tseg", filepath.Join(root, "generations", "g", "segments", "a.tseg")},
		{"a", filepath.Join(root, "a")},
		{"a.b/..c/c..", filepath.Join(root, "a.b", "..c", "c..")},
		{"", ""},
		{".", ""},
		{"..", ""},
		{"../x", ""},
		{"generations/g/segments/../../../../tmp/x/0-1.tseg", ""},
		{"a/./b", ""},
		{"a/b/..", ""},
		{"/etc/passwd", ""},
		{"a//b", ""},
		{"a/", ""},
		{"a\\..\\..\\x", ""},
		{"a\x00b", ""},
	}
	for _, tc := range tests {
		got, err := Join(root, tc.rel)
		if tc.want == "" {
			if err == nil || !errors.Is(err, ErrEscapes) {
				t.Errorf("Join(%q) = %q, %v; want ErrEscapes", tc.rel, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Join(%q) = %q, %v; want %q", tc.rel, got, err, tc.want)
		}
	}
}
