package secondary

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// DefaultScratch is the scratch directory tailer uses when none is given:
// db.tailer beside the store, so it is on the store's filesystem (hard
// links) and outside the store's directory (tailer never writes there).
func DefaultScratch(db string) string {
	db = filepath.Clean(db)
	return filepath.Join(filepath.Dir(db), filepath.Base(db)+".tailer")
}

// InsideError says a directory tailer would write to is the store's
// directory or below it, where tailer never writes.
type InsideError struct {
	Path  string // the directory given
	Store string // the store's directory
}

func (e *InsideError) Error() string {
	return fmt.Sprintf("%s is inside the store's directory %s: tailer never writes there; put it beside the store", e.Path, e.Store)
}

// CheckOutside returns an *InsideError when path is inside the store's
// directory db (see Inside), so every command refuses the same paths.
func CheckOutside(path, db string) error {
	if Inside(path, db) {
		return &InsideError{Path: path, Store: db}
	}
	return nil
}

// Inside reports whether path is dir or below it. Both are made absolute
// and clean first; then symlinks are resolved as far as the paths exist
// (a scratch directory may not exist yet), and path counts as inside when
// either view puts it there: a directory reached through a link into the
// store is still in it. A name that merely starts with two dots
// (dir/..tailer) is inside; a sibling sharing a prefix (/a/dbx for /a/db)
// is not.
func Inside(path, dir string) bool {
	p, d := absClean(path), absClean(dir)
	return within(p, d) || within(resolve(p), resolve(d))
}

func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func absClean(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a // Abs cleans
	}
	return filepath.Clean(p)
}

// resolve evaluates the symlinks of the longest existing ancestor of p
// (p itself included) and appends the rest unchanged.
func resolve(p string) string {
	rest := ""
	for cur := p; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return p
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
