// Package durable holds what makes a file system change survive a crash:
// tailer's spool, the standby's sidecar and the Stalwart-format output
// all rename files into place, and a rename is only durable once the
// directory holding it is fsynced.
package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SyncDir fsyncs a directory, making the entries created, renamed or
// removed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// WriteFile replaces path with data so that a crash leaves either the old
// file or the new one, whole: the bytes go to a temporary file in path's
// directory (mode 0600), which is fsynced, renamed over path, and the
// directory fsynced. temp names the temporary file: a pattern with '*'
// (os.CreateTemp: a fresh name each time, for callers that clean up by
// prefix) or a fixed name (reused, so a crash leaves at most one behind).
func WriteFile(path string, data []byte, temp string) error {
	dir := filepath.Dir(path)
	var f *os.File
	var err error
	if strings.Contains(temp, "*") {
		f, err = os.CreateTemp(dir, temp)
	} else {
		f, err = os.OpenFile(filepath.Join(dir, temp), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// MkdirAll is os.MkdirAll that also fsyncs the parent of every
// directory it creates, so a new object's directory entry chain is as
// durable as the object itself. mode is for the directories it creates.
func MkdirAll(dir string, mode os.FileMode) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, mode); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return SyncDir(parent)
}
