package blobfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Entry is one blob file found in a blob store.
type Entry struct {
	// Key is the blob key the file name decodes to: a hash for mail
	// blobs (IsHash), or one of Stalwart's other keys.
	Key []byte
	// Hash is Key as a hash, when IsHash.
	Hash   Hash
	IsHash bool
	Path   string
	Size   int64
	// ModTime is the file's modification time: how long ago Stalwart last
	// wrote it, which tells a file being written from one left unfinished.
	ModTime time.Time
}

// Name is the entry's file name.
func (e Entry) Name() string { return filepath.Base(e.Path) }

// Foreign is something in a blob store that is not Stalwart's: a
// directory or file whose name or place does not fit the layout (a file
// named for another key prefix, another depth, a stray temporary file).
// Scan never touches it; callers report it.
type Foreign struct {
	Path string
	Why  string
}

// ScanOptions are Scan's callbacks; nil ones are skipped.
type ScanOptions struct {
	// Foreign is told of every entry that does not belong to the layout.
	Foreign func(Foreign)
}

// Scan walks the blob store and calls found for every blob file, in no
// particular order. A directory that disappears during the walk (Stalwart
// does not remove directories, but an operator may) is skipped; other
// read errors stop the walk. found's error stops it too and is returned.
func (l Layout) Scan(ctx context.Context, found func(Entry) error, opt ScanOptions) error {
	return l.scanDir(ctx, l.Root, nil, found, opt)
}

// ScanDir walks one directory of the store, dir being the path of a
// level directory (or the root) and prefix the key bytes its path names:
// the directory watcher rescans a directory that appeared with it.
func (l Layout) ScanDir(ctx context.Context, dir string, found func(Entry) error, opt ScanOptions) error {
	prefix, ok := l.dirPrefix(dir)
	if !ok {
		return fmt.Errorf("%s is not a directory of the blob store at %s", dir, l.Root)
	}
	return l.scanDir(ctx, dir, prefix, found, opt)
}

// dirPrefix returns the key bytes a level directory's path spells.
func (l Layout) dirPrefix(dir string) ([]byte, bool) {
	rel, err := filepath.Rel(l.Root, dir)
	if err != nil {
		return nil, false
	}
	if rel == "." {
		return nil, true
	}
	var prefix []byte
	for rel != "." {
		b, ok := parseLevel(filepath.Base(rel))
		if !ok {
			return nil, false
		}
		prefix = append([]byte{b}, prefix...)
		rel = filepath.Dir(rel)
	}
	if len(prefix) > l.Levels {
		return nil, false
	}
	return prefix, true
}

func (l Layout) scanDir(ctx context.Context, dir string, prefix []byte, found func(Entry) error, opt ScanOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && len(prefix) > 0 {
			return nil
		}
		return fmt.Errorf("read blob directory %s: %w", dir, err)
	}
	defer f.Close()
	for {
		ents, err := f.ReadDir(1024)
		for _, de := range ents {
			path := filepath.Join(dir, de.Name())
			if len(prefix) < l.Levels {
				b, ok := parseLevel(de.Name())
				if !ok || !de.IsDir() {
					foreign(opt, path, "not a level directory (lowercase hex of one byte, not zero padded)")
					continue
				}
				if err := l.scanDir(ctx, path, append(prefix[:len(prefix):len(prefix)], b), found, opt); err != nil {
					return err
				}
				continue
			}
			if err := l.leaf(de, path, prefix, found, opt); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read blob directory %s: %w", dir, err)
		}
	}
}

func (l Layout) leaf(de os.DirEntry, path string, prefix []byte, found func(Entry) error, opt ScanOptions) error {
	if !de.Type().IsRegular() {
		foreign(opt, path, "not a regular file")
		return nil
	}
	key, err := ParseKeyName(de.Name())
	if err != nil {
		foreign(opt, path, "file name is not a blob key in Stalwart's base32")
		return nil
	}
	if len(key) < len(prefix) || string(key[:len(prefix)]) != string(prefix) {
		foreign(opt, path, "file is in the directory of another key prefix (is the blob store depth right?)")
		return nil
	}
	info, err := de.Info()
	if errors.Is(err, os.ErrNotExist) {
		return nil // purged since the directory was read
	}
	if err != nil {
		return fmt.Errorf("stat blob %s: %w", path, err)
	}
	return found(newEntry(key, path, info))
}

func foreign(opt ScanOptions, path, why string) {
	if opt.Foreign != nil {
		opt.Foreign(Foreign{Path: path, Why: why})
	}
}

// EntryAt describes the file at path if it is a blob file of the layout
// (the watcher's single-file case). ok is false for anything else, and
// for a file that is gone.
func (l Layout) EntryAt(path string) (Entry, bool, error) {
	prefix, ok := l.dirPrefix(filepath.Dir(path))
	if !ok || len(prefix) != l.Levels {
		return Entry{}, false, nil
	}
	key, err := ParseKeyName(filepath.Base(path))
	if err != nil || len(key) < len(prefix) || string(key[:len(prefix)]) != string(prefix) {
		return Entry{}, false, nil
	}
	info, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("stat blob %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return Entry{}, false, nil
	}
	return newEntry(key, path, info), true, nil
}

func newEntry(key []byte, path string, info os.FileInfo) Entry {
	e := Entry{Key: key, Path: path, Size: info.Size(), ModTime: info.ModTime()}
	if len(key) == HashLen {
		copy(e.Hash[:], key)
		e.IsHash = true
	}
	return e
}
