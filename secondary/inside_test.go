package secondary

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestInside(t *testing.T) {
	base := t.TempDir()
	db := filepath.Join(base, "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link") // base/link -> base/db
	if err := os.Symlink(db, link); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, dir string
		want            bool
	}{
		{"below", "/a/db/x", "/a/db", true},
		{"same path", "/a/db", "/a/db", true},
		{"same path, trailing slash", "/a/db/", "/a/db", true},
		{"name starting with two dots", "/a/db/..tailer", "/a/db", true},
		{"dot", ".", ".", true},
		{"dot below the working dir", ".", filepath.Dir(wd), true},
		{"parent", "/a", "/a/db", false},
		{"up and out", "/a/db/../x", "/a/db", false},
		{"relative up", "../x", ".", false},
		{"sibling with a common prefix", "/a/dbx", "/a/db", false},
		{"default scratch", DefaultScratch("/a/db"), "/a/db", false},
		{"unrelated", "/b", "/a/db", false},
		{"through a link into the store", filepath.Join(link, "scratch"), db, true},
		{"the store through a link", db, link, true},
		{"beside the link's target", filepath.Join(base, "db.tailer"), link, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Inside(tc.path, tc.dir); got != tc.want {
				t.Errorf("Inside(%q, %q) = %v, want %v", tc.path, tc.dir, got, tc.want)
			}
			err := CheckOutside(tc.path, tc.dir)
			var ie *InsideError
			if got := errors.As(err, &ie); got != tc.want {
				t.Errorf("CheckOutside(%q, %q) = %v", tc.path, tc.dir, err)
			}
		})
	}
}

func TestDefaultScratch(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/stalwart":  "/var/lib/stalwart.tailer",
		"/var/lib/stalwart/": "/var/lib/stalwart.tailer",
		"db":                 "db.tailer",
	} {
		if got := DefaultScratch(in); got != want {
			t.Errorf("DefaultScratch(%q) = %q, want %q", in, got, want)
		}
	}
}
