// Package owned creates the directories tailer works in, private to the
// user running it, and removes only what it created. Scratch, WAL pins,
// snapshots, restore work and restored stores hold hard links to, or
// copies of, the store's files, that is mail, so they are created DirMode
// and the files tailer writes there FileMode. A directory an operator
// names (restore's or follow's --work, verify's --temp) is never deleted:
// tailer works in a fresh directory inside it (TempDir) and removes just
// that.
package owned

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DirMode is the mode of every directory tailer creates: only the user
// running tailer may enter it. Existing directories keep their mode.
const DirMode fs.FileMode = 0o700

// FileMode is the mode of every file tailer writes into its directories.
const FileMode fs.FileMode = 0o600

// TempDir is a fresh directory tailer created inside a parent it may not
// own. Remove deletes it and the parents NewTempDir had to create, never
// anything that was there before.
type TempDir struct {
	// Path is the directory created: empty and DirMode when made.
	Path string
	made []string // parents created for it, deepest first
}

// NewTempDir creates a fresh directory (os.MkdirTemp, pattern as there)
// inside parent ("" is the system's temporary directory), creating parent
// and its missing ancestors with DirMode first and recording them, so
// Remove can take them away again when they are empty.
func NewTempDir(parent, pattern string) (*TempDir, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	made, err := MkdirAll(parent)
	if err != nil {
		return nil, err
	}
	p, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		removeEmpty(made)
		return nil, fmt.Errorf("create a temporary directory in %s: %w", parent, err)
	}
	return &TempDir{Path: p, made: made}, nil
}

// Remove deletes the directory with everything in it, then each parent
// NewTempDir created if it is empty (something else may have been put
// there meanwhile: it stays).
func (d *TempDir) Remove() error {
	if d == nil || d.Path == "" {
		return nil
	}
	err := os.RemoveAll(d.Path)
	if err != nil {
		err = fmt.Errorf("remove temporary directory %s: %w", d.Path, err)
	}
	removeEmpty(d.made)
	d.Path, d.made = "", nil
	return err
}

// MkdirAll is os.MkdirAll with DirMode that returns the directories it
// created, deepest first: exactly the ones a caller may remove again.
// Existing directories are left as they are (their mode too).
func MkdirAll(path string) ([]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w", path, err)
	}
	var missing []string // shallowest last
	for p := abs; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err == nil {
			if !st.IsDir() {
				return nil, fmt.Errorf("create directory %s: %s is not a directory", path, p)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("create directory %s: %w", path, err)
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], DirMode)
		if errors.Is(err, fs.ErrExist) {
			continue // created meanwhile by someone else: not ours
		}
		if err != nil {
			removeEmpty(made)
			return nil, fmt.Errorf("create directory %s: %w", missing[i], err)
		}
		made = append([]string{missing[i]}, made...)
	}
	return made, nil
}

// removeEmpty removes dirs (deepest first) while they are empty.
func removeEmpty(dirs []string) {
	for _, d := range dirs {
		if os.Remove(d) != nil {
			return
		}
	}
}
