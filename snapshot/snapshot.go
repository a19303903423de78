// Package snapshot freezes a live RocksDB store from outside, without
// opening it: CURRENT, IDENTITY and the MANIFEST are copied, every SST,
// blob, WAL and OPTIONS file is hard-linked into a directory tailer owns,
// and the copy is then opened read-only (RocksDB replays the linked WAL
// into memory, writing nothing). Hard links share the primary's inodes, so
// files the primary deletes meanwhile stay readable for as long as the
// snapshot lives, and nothing is ever written into the primary's directory.
//
// Why not a secondary or a checkpoint: RocksDB 9.10 crashes iterating a
// blob-file family (Stalwart's t) through a secondary instance, and a
// checkpoint needs the primary's DB handle, which only Stalwart has.
//
// Consistency: the MANIFEST copy is the snapshot's truth. A flush or
// compaction that finishes while files are being linked appends to the
// MANIFEST (and may delete a WAL or SST the copy still needs), so Take
// compares CURRENT and the MANIFEST's size before and after linking and
// starts over if either moved. RocksDB deletes obsolete files only after
// the MANIFEST edit that obsoletes them is written, so an unchanged
// MANIFEST means every file it references was still there when linked.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/store"
)

// Snapshot is a frozen copy of a store's files.
type Snapshot struct {
	Dir      string
	Linked   int   // files hard-linked
	Copied   int   // files copied (CURRENT, MANIFEST, IDENTITY, and everything when links fail)
	Bytes    int64 // bytes the store's files occupy (linked or copied)
	Attempts int   // tries until the MANIFEST held still
	// CopiedData is set when hard links were impossible (another filesystem)
	// and data files were copied instead: slower and costs space.
	CopiedData bool
}

// ErrBusy means the MANIFEST kept moving for every attempt.
var ErrBusy = errors.New("the store's MANIFEST changed during every snapshot attempt")

// ErrExists means the snapshot directory is there already: Take never
// writes into, or removes, a directory it did not create.
var ErrExists = errors.New("snapshot directory exists already")

// Take freezes primary into dir, which must not exist yet; it is created
// owned.DirMode (it holds links to the store's files: mail), as are its
// missing parents. It retries (up to maxAttempts, with a short pause)
// while the primary flushes or compacts underneath it.
func Take(ctx context.Context, primary, dir string, log *slog.Logger) (*Snapshot, error) {
	const maxAttempts = 50
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := store.CheckDir(primary); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("snapshot of %s into %s: %w", primary, dir, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("snapshot dir %s: %w", dir, err)
	}
	if _, err := owned.MkdirAll(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("snapshot dir: %w", err)
	}
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if attempt > 1 {
			// The directory of the attempt before, which this call created.
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("clear snapshot dir %s: %w", dir, err)
			}
		}
		snap, moved, err := try(primary, dir, log)
		if err != nil {
			if !errors.Is(err, ErrExists) {
				os.RemoveAll(dir)
			}
			return nil, err
		}
		if !moved {
			snap.Attempts = attempt
			return snap, nil
		}
		log.Debug("store changed during snapshot, retrying", "attempt", attempt)
		select {
		case <-ctx.Done():
			os.RemoveAll(dir)
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("snapshot of %s: %w (%d attempts): the store is flushing or compacting without pause; try again", primary, ErrBusy, maxAttempts)
}

// try makes one attempt; moved reports that the store changed meanwhile.
func try(primary, dir string, log *slog.Logger) (*Snapshot, bool, error) {
	current, err := os.ReadFile(filepath.Join(primary, "CURRENT"))
	if err != nil {
		return nil, false, fmt.Errorf("read CURRENT of %s: %w", primary, err)
	}
	manifest := strings.TrimSpace(string(current))
	if !strings.HasPrefix(manifest, "MANIFEST-") || strings.ContainsAny(manifest, "/\\") {
		return nil, false, fmt.Errorf("CURRENT of %s names %q, not a MANIFEST: is this a RocksDB store?", primary, manifest)
	}
	if err := os.Mkdir(dir, owned.DirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			err = ErrExists // created by someone else meanwhile: not ours to remove
		}
		return nil, false, fmt.Errorf("create snapshot dir %s: %w", dir, err)
	}
	snap := &Snapshot{Dir: dir}
	msize, err := copyPrefix(filepath.Join(primary, manifest), filepath.Join(dir, manifest), -1)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, true, nil // CURRENT moved on between the two reads
		}
		return nil, false, err
	}
	snap.Copied++
	entries, err := os.ReadDir(primary)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", primary, err)
	}
	for _, e := range entries {
		name := e.Name()
		kind := classify(name)
		if kind == skip {
			continue
		}
		src, dst := filepath.Join(primary, name), filepath.Join(dir, name)
		n, copied, err := place(src, dst, kind, snap.CopiedData)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted meanwhile: the MANIFEST check below decides
		}
		if err != nil {
			return nil, false, err
		}
		if copied && kind == link && !snap.CopiedData {
			snap.CopiedData = true
			log.Warn("hard links into the scratch directory failed (another filesystem?): copying the store's files instead, which is slower and uses space; put --scratch on the primary's filesystem", "scratch", dir)
		}
		if copied {
			snap.Copied++
		} else {
			snap.Linked++
		}
		snap.Bytes += n
	}
	if err := os.WriteFile(filepath.Join(dir, "CURRENT"), current, owned.FileMode); err != nil {
		return nil, false, fmt.Errorf("write CURRENT into %s: %w", dir, err)
	}
	after, err := os.ReadFile(filepath.Join(primary, "CURRENT"))
	if err != nil {
		return nil, false, fmt.Errorf("read CURRENT of %s: %w", primary, err)
	}
	st, err := os.Stat(filepath.Join(primary, manifest))
	if string(after) != string(current) || err != nil || st.Size() != msize {
		return nil, true, nil
	}
	return snap, false, nil
}

type fileKind int

const (
	skip      fileKind = iota
	link               // immutable or append-only data: hard-link
	copyWhole          // small metadata: copy
)

func classify(name string) fileKind {
	switch {
	case strings.HasSuffix(name, ".sst"), strings.HasSuffix(name, ".blob"),
		strings.HasSuffix(name, ".log"), strings.HasPrefix(name, "OPTIONS-"):
		if strings.HasPrefix(name, "LOG") {
			return skip // the info log, LOG or LOG.old.*
		}
		return link
	case name == "IDENTITY":
		return copyWhole
	}
	return skip // CURRENT (written last), MANIFEST-* (copied first), LOCK, LOG*
}

// place hard-links src to dst (or copies, for metadata or when links are
// impossible). It returns the bytes and whether it copied.
func place(src, dst string, kind fileKind, alreadyCopying bool) (int64, bool, error) {
	if kind == link && !alreadyCopying {
		err := os.Link(src, dst)
		if err == nil {
			st, err := os.Stat(dst)
			if err != nil {
				return 0, false, fmt.Errorf("stat %s: %w", dst, err)
			}
			return st.Size(), false, nil
		}
		if errors.Is(err, os.ErrNotExist) {
			return 0, false, err
		}
		if !errors.Is(err, syscall.EXDEV) && !errors.Is(err, syscall.EPERM) {
			return 0, false, fmt.Errorf("hard-link %s into %s: %w", src, filepath.Dir(dst), err)
		}
	}
	n, err := copyPrefix(src, dst, -1)
	return n, true, err
}

// copyPrefix copies src to dst (at most limit bytes when limit >= 0) and
// returns the number of bytes copied. For a MANIFEST it copies the size
// seen at open time, so a concurrent append is not half-copied.
func copyPrefix(src, dst string, limit int64) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", src, err)
	}
	size := st.Size()
	if limit >= 0 && limit < size {
		size = limit
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, owned.FileMode)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", dst, err)
	}
	n, err := io.Copy(out, io.LimitReader(in, size))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return n, nil
}

// Remove deletes the snapshot's files (the primary's own files stay: only
// links are removed).
func (s *Snapshot) Remove() error { return os.RemoveAll(s.Dir) }
