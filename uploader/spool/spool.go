package spool

import (
	"errors"
	"fmt"
	"github.com/tailer-backup/tailer/uploader"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tailer-backup/tailer/internal/durable"
	"github.com/tailer-backup/tailer/internal/owned"
)

// Spool is a durable local queue of objects waiting for upload. It is what
// lets tailer keep sealing segments through a bucket outage and lose
// nothing on kill -9: an object is either still being written (a temp file,
// discarded on reopen) or committed (renamed into the queue and fsynced),
// and a committed object stays until the Shipper removes it after the
// replica confirmed the upload.
//
// Queue files are named <16 hex digit sequence>-<path-escaped key>, so a
// directory listing is the FIFO order and the key survives a restart
// without an index to keep consistent. A Spool is safe for concurrent use;
// one directory must belong to one process.
type Spool struct {
	dir string

	mu   sync.Mutex // orders commits: sequence allocation and rename together
	next uint64     // sequence number of the next commit
}

// SpoolEntry is one committed object waiting for upload.
type SpoolEntry struct {
	Key  string // replica key
	Path string // local file holding the object's bytes
	Size int64
}

// maxNameLen is the usual file name limit (ext4, xfs, tmpfs).
const maxNameLen = 255

// OpenSpool opens (creating if needed) the spool in dir. Temp files left by
// a crash are deleted: their objects were never committed, so their
// producer will write them again.
func OpenSpool(dir string) (*Spool, error) {
	dir = filepath.Clean(dir)
	// The spool holds segments and exports (mail) on their way out:
	// private to the user running tailer, like the rest of the scratch.
	if err := durable.MkdirAll(dir, owned.DirMode); err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	s := &Spool{dir: dir}
	removed := false
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, uploader.TempPrefix) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("open spool %s: remove uncommitted %s: %w", dir, name, err)
			}
			removed = true
			continue
		}
		if seq, _, ok := parseSpoolName(name); ok && seq >= s.next {
			s.next = seq + 1
		}
	}
	if removed {
		if err := durable.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("open spool %s: %w", dir, err)
		}
	}
	return s, nil
}

// Dir returns the spool directory, for logs.
func (s *Spool) Dir() string { return s.dir }

func spoolName(seq uint64, key string) string {
	return fmt.Sprintf("%016x-%s", seq, url.PathEscape(key))
}

// parseSpoolName inverts spoolName; ok is false for files that are not
// queue entries (they are ignored, not deleted).
func parseSpoolName(name string) (seq uint64, key string, ok bool) {
	if len(name) < 18 || name[16] != '-' {
		return 0, "", false
	}
	seq, err := strconv.ParseUint(name[:16], 16, 64)
	if err != nil {
		return 0, "", false
	}
	key, err = url.PathUnescape(name[17:])
	if err != nil || uploader.ValidateKey(key) != nil {
		return 0, "", false
	}
	return seq, key, true
}

// SpoolFile is an object being written into the spool. Nothing is queued
// until Commit, so a producer that fails or crashes half-way leaves no
// partial object for the Shipper to upload.
type SpoolFile struct {
	s     *Spool
	key   string
	f     *os.File
	done  bool   // committed or aborted
	final string // path in the queue once committed
}

// Create starts a new spool object that will be uploaded under key.
func (s *Spool) Create(key string) (*SpoolFile, error) {
	if err := uploader.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("spool %s: create: %w", s.dir, err)
	}
	if n := len(spoolName(0, key)); n > maxNameLen {
		return nil, fmt.Errorf("spool %s: create %s: escaped file name is %d bytes, limit %d", s.dir, key, n, maxNameLen)
	}
	f, err := os.CreateTemp(s.dir, uploader.TempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("spool %s: create %s: %w", s.dir, key, err)
	}
	return &SpoolFile{s: s, key: key, f: f}, nil
}

// Key returns the replica key the object will be uploaded under.
func (f *SpoolFile) Key() string { return f.key }

// Write appends to the object (io.Writer).
func (f *SpoolFile) Write(p []byte) (int, error) {
	if f.done {
		return 0, fmt.Errorf("spool %s: write %s: already committed or aborted", f.s.dir, f.key)
	}
	n, err := f.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("spool %s: write %s: %w", f.s.dir, f.key, err)
	}
	return n, nil
}

// Commit makes the object durable and queues it: fsync the file, rename it
// into the queue under the next sequence number, fsync the directory.
// After Commit returns nil, a crash loses nothing. On error the object is
// discarded, as by Abort.
func (f *SpoolFile) Commit() error {
	if f.done {
		return fmt.Errorf("spool %s: commit %s: already committed or aborted", f.s.dir, f.key)
	}
	f.done = true
	tmp := f.f.Name()
	fail := func(step string, err error) error {
		f.f.Close()
		os.Remove(tmp)
		return fmt.Errorf("spool %s: commit %s: %s: %w", f.s.dir, f.key, step, err)
	}
	if err := f.f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := f.f.Close(); err != nil {
		return fail("close", err)
	}
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	final := filepath.Join(s.dir, spoolName(s.next, f.key))
	if err := os.Rename(tmp, final); err != nil {
		return fail("rename", err)
	}
	s.next++
	f.final = final
	if err := durable.SyncDir(s.dir); err != nil {
		// The rename happened but may not be durable; leave the entry: an
		// extra upload is harmless, a silent loss is not.
		return fmt.Errorf("spool %s: commit %s: %w", s.dir, f.key, err)
	}
	return nil
}

// Path is where a committed object lies in the spool, so it can be
// queued in other spools too (Link) without writing it again.
func (f *SpoolFile) Path() string { return f.final }

// Link queues, under key, an object committed in another spool on the
// same filesystem: a hard link (a copy when links are impossible), so a
// segment sealed once is uploaded to several replicas, each at its own
// pace, and its bytes are freed when the last replica confirmed it.
func (s *Spool) Link(key, src string) error {
	if err := uploader.ValidateKey(key); err != nil {
		return fmt.Errorf("spool %s: link: %w", s.dir, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	final := filepath.Join(s.dir, spoolName(s.next, key))
	if err := os.Link(src, final); err != nil {
		if err := copyFileSync(src, final); err != nil {
			return fmt.Errorf("spool %s: queue %s: %w", s.dir, key, err)
		}
	}
	s.next++
	if err := durable.SyncDir(s.dir); err != nil {
		return fmt.Errorf("spool %s: queue %s: %w", s.dir, key, err)
	}
	return nil
}

// copyFileSync copies src to dst through a temp file, fsynced.
func copyFileSync(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), uploader.TempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := out.Name()
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// Abort discards the object. It does nothing after Commit, so
// `defer f.Abort()` is the idiomatic cleanup for error paths.
func (f *SpoolFile) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	f.f.Close()
	if err := os.Remove(f.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool %s: abort %s: %w", f.s.dir, f.key, err)
	}
	return nil
}

// Add queues data under key durably: Create, Write, Commit in one call,
// for objects small enough to hold in memory (generation.json, segments).
func (s *Spool) Add(key string, data []byte) error {
	f, err := s.Create(key)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// Pending returns the committed objects in commit order (oldest first),
// the order they must be uploaded in; the order survives restarts because
// it is encoded in the file names.
func (s *Spool) Pending() ([]SpoolEntry, error) {
	ents, err := os.ReadDir(s.dir) // sorted by name = by sequence
	if err != nil {
		return nil, fmt.Errorf("spool %s: list: %w", s.dir, err)
	}
	var out []SpoolEntry
	for _, e := range ents {
		_, key, ok := parseSpoolName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by a concurrent upload
		}
		if err != nil {
			return nil, fmt.Errorf("spool %s: list: %w", s.dir, err)
		}
		out = append(out, SpoolEntry{Key: key, Path: filepath.Join(s.dir, e.Name()), Size: fi.Size()})
	}
	return out, nil
}

// Remove deletes an entry once its upload is confirmed. Removing an entry
// twice is not an error.
func (s *Spool) Remove(e SpoolEntry) error {
	if filepath.Dir(e.Path) != s.dir {
		return fmt.Errorf("spool %s: remove %s: %s is not in the spool", s.dir, e.Key, e.Path)
	}
	if err := os.Remove(e.Path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("spool %s: remove %s: %w", s.dir, e.Key, err)
	}
	if err := durable.SyncDir(s.dir); err != nil {
		return fmt.Errorf("spool %s: remove %s: %w", s.dir, e.Key, err)
	}
	return nil
}

// Bytes returns the total size of committed entries: how much data would
// be lost if this disk died now, exported as tailer_spool_bytes.
func (s *Spool) Bytes() (int64, error) {
	ents, err := s.Pending()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ents {
		n += e.Size
	}
	return n, nil
}

// OldestAge is how long the oldest pending object has waited since it was
// committed (its file's modification time), or 0 for an empty spool.
func (s *Spool) OldestAge() (time.Duration, error) {
	ents, err := s.Pending()
	if err != nil || len(ents) == 0 {
		return 0, err
	}
	st, err := os.Stat(ents[0].Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil // uploaded meanwhile
		}
		return 0, fmt.Errorf("stat spool entry %s: %w", ents[0].Path, err)
	}
	return time.Since(st.ModTime()), nil
}
