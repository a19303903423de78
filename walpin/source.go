package walpin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tailer-backup/tailer/internal/wbatch"
)

// Source is where the agent reads WAL batches from: a Pinned source
// (hard links that outlive the primary's WAL deletion) or an InPlace one
// (the primary's own files, read-only). Both read with this package's
// reader, never with RocksDB's WAL iterator. Refresh and Run may run
// concurrently with Next and Release.
type Source interface {
	// Refresh brings the set of WAL files up to date with the primary's
	// directory and returns how many files it pinned (0 for InPlace).
	Refresh() (int, error)
	// Run keeps the set up to date until ctx ends (see Pinned.Run); an
	// InPlace source has nothing to keep and returns at once.
	Run(ctx context.Context, every time.Duration)
	// Next calls fn with each batch after cur whose first sequence
	// number is at most to, in WAL order, reading only bytes not read
	// before, and returns the cursor to continue from. With a zero cursor
	// it starts in the newest file whose first batch is at or before
	// want; when every file starts after want it returns ErrNotPinned.
	// It stops between records once ctx ends, returning ctx's error and
	// the cursor just after the last batch fn took. The caller skips
	// batches it already has and checks continuity.
	Next(ctx context.Context, cur Cursor, want, to uint64, fn func(seq uint64, data []byte) error) (Cursor, error)
	// Release drops the pins whose every batch is at or before shipped
	// and returns how many it removed; files of the primary are never
	// removed.
	Release(shipped uint64) (int, error)
	// Stats reports the pins held and their size, for metrics.
	Stats() (files int, bytes int64)
	// Reset forgets every file and removes the pins. A new generation
	// calls it: after the store was replaced or restored, WAL file
	// numbers start over and an old pin with a reused number would be
	// taken for the new file.
	Reset() error
	// Disabled says why batches are (partly) read in place rather than
	// from pins, "" when pinning works: the operator switched it off, or
	// hard links into the pin directory fail.
	Disabled() string
	// OnNewFile registers f, called after a WAL file that Next has not
	// seen yet became readable, so an event-driven reader learns of it
	// at once without listing the directory on every read. InPlace never
	// calls it: its Next lists the directory every time.
	OnNewFile(f func())
}

// Cursor is a position in the WAL: a file and the byte offset just after
// the last record consumed. The zero Cursor means "find the file that
// holds the wanted sequence number".
type Cursor struct {
	File   uint64
	Offset int64
}

// ErrNotPinned means no WAL file the source holds has the wanted
// sequence number: the primary deleted its WAL before it could be pinned
// (tailer was down, pinning was off, or on another filesystem). It is a
// gap.
var ErrNotPinned = errors.New("no pinned WAL file holds the wanted batch")

// walFile is one WAL file a source reads: a pin (a link in the pin
// directory, owned) or the primary's own file, read in place.
type walFile struct {
	number   uint64
	path     string
	firstSeq uint64 // sequence number of its first batch, once known
	known    bool
	owned    bool // a link in the pin directory: Release and Reset may remove it
}

// fileSet is the state and the reading both sources share: the WAL
// files known by number.
type fileSet struct {
	mu    sync.Mutex
	files map[uint64]*walFile
}

func newFileSet() fileSet { return fileSet{files: map[uint64]*walFile{}} }

// walNumber parses a WAL file name, "000123.log".
func walNumber(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, ".log")
	if !ok || base == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 64)
	return n, err == nil
}

// has reports whether file number n is known.
func (s *fileSet) has(n uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.files[n]
	return ok
}

// add records file number n at path unless it is known already.
func (s *fileSet) add(n uint64, path string, owned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[n]; !ok {
		s.files[n] = &walFile{number: n, path: path, owned: owned}
	}
}

// readInPlace makes the primary's WAL files listed in entries (of
// directory primary) known, read in place, and forgets the in-place files
// the primary deleted. Pins stay: they may still bridge a gap.
func (s *fileSet) readInPlace(primary string, entries []os.DirEntry) {
	for _, e := range entries {
		if n, ok := walNumber(e.Name()); ok {
			s.add(n, filepath.Join(primary, e.Name()), false)
		}
	}
	s.forgetDeleted(entries)
}

// forgetDeleted drops in-place files that are no longer among entries.
func (s *fileSet) forgetDeleted(entries []os.DirEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	present := map[uint64]bool{}
	for _, e := range entries {
		if n, ok := walNumber(e.Name()); ok {
			present[n] = true
		}
	}
	for n, x := range s.files {
		if !x.owned && !present[n] {
			delete(s.files, n)
		}
	}
}

// sorted returns the files in WAL number order, learning first sequence
// numbers where still unknown.
func (s *fileSet) sorted() []*walFile {
	s.mu.Lock()
	out := make([]*walFile, 0, len(s.files))
	for _, x := range s.files {
		out = append(out, x)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].number < out[j].number })
	for _, x := range out {
		s.mu.Lock()
		known := x.known
		s.mu.Unlock()
		if !known {
			if seq, ok := firstSeq(x.path); ok {
				s.mu.Lock()
				x.firstSeq, x.known = seq, true
				s.mu.Unlock()
			}
		}
	}
	return out
}

// firstSeq reads the sequence number of a WAL file's first batch from its
// first physical record.
func firstSeq(path string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	buf := make([]byte, blockSize)
	n, _ := f.Read(buf)
	buf = buf[:n]
	for off := 0; off+headerSize <= len(buf); {
		length := int(binary.LittleEndian.Uint16(buf[off+4 : off+6]))
		typ := buf[off+6]
		hs := headerSize
		if typ >= typeRecyclableFull && typ <= typeRecyclableLast || typ == typeRecyclableTimestampSize {
			hs = recyclableHeaderSize
		}
		if typ == typeZero || off+hs+length > len(buf) {
			return 0, false
		}
		if b := normalize(typ); (b == typeFull || b == typeFirst) && length >= wbatch.HeaderLen {
			return binary.LittleEndian.Uint64(buf[off+hs:]), true
		}
		off += hs + length
	}
	return 0, false
}

// next is Source.Next over the files known now.
func (s *fileSet) next(ctx context.Context, cur Cursor, want, to uint64, fn func(seq uint64, data []byte) error) (Cursor, error) {
	if err := ctx.Err(); err != nil {
		return cur, err
	}
	files := s.sorted()
	if cur.File == 0 {
		found := false
		for _, x := range files {
			if x.known && x.firstSeq <= want {
				cur, found = Cursor{File: x.number}, true
			}
		}
		if !found {
			for _, x := range files {
				if x.known {
					return cur, fmt.Errorf("%w: want %d, the oldest WAL file held starts at %d", ErrNotPinned, want, x.firstSeq)
				}
			}
			return cur, nil // no WAL written yet: nothing to read
		}
	}
	for i, x := range files {
		if x.number < cur.File {
			continue
		}
		off := int64(0)
		if x.number == cur.File {
			off = cur.Offset
		}
		stopped := false
		next, err := readFileFrom(x.path, x.number, off, func(b []byte, _ int64) error {
			if err := ctx.Err(); err != nil {
				return err // between records: the cursor stays before this one
			}
			h, err := wbatch.ReadHeader(b)
			if err != nil {
				return fmt.Errorf("WAL %s: %w", x.path, err)
			}
			if h.Seq > to {
				stopped = true
				return errStop
			}
			return fn(h.Seq, append([]byte(nil), b...))
		})
		if errors.Is(err, os.ErrNotExist) {
			// Only a file read in place can vanish (the primary deleted
			// it): whatever it held and was not read yet is a gap, which
			// the caller's continuity check reports.
			err, next = nil, off
		}
		cur = Cursor{File: x.number, Offset: next}
		if ctxErr := ctx.Err(); err != nil && ctxErr != nil && errors.Is(err, ctxErr) {
			return cur, ctxErr
		}
		if err != nil || stopped {
			return cur, err
		}
		if i+1 < len(files) {
			// A newer WAL file exists, so this one is complete: go on.
			cur = Cursor{File: files[i+1].number}
		}
	}
	return cur, nil
}

// release is Source.Release: a file is done when the next file starts at
// or before shipped+1; only pins are removed.
func (s *fileSet) release(shipped uint64) (int, error) {
	files := s.sorted()
	released := 0
	for i := 0; i+1 < len(files); i++ {
		next := files[i+1]
		if !next.known || next.firstSeq > shipped+1 {
			break
		}
		if !files[i].owned {
			continue // the primary's own file: never removed by tailer
		}
		if err := os.Remove(files[i].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return released, fmt.Errorf("release WAL pin %s: %w", files[i].path, err)
		}
		s.mu.Lock()
		delete(s.files, files[i].number)
		s.mu.Unlock()
		released++
	}
	return released, nil
}

// stats is Source.Stats: pins only.
func (s *fileSet) stats() (files int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.files {
		if !x.owned {
			continue
		}
		if st, err := os.Stat(x.path); err == nil {
			files++
			bytes += st.Size()
		}
	}
	return files, bytes
}

// reset is Source.Reset.
func (s *fileSet) reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, x := range s.files {
		if x.owned {
			if err := os.Remove(x.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("drop WAL pin %s: %w", x.path, err)
			}
		}
		delete(s.files, n)
	}
	return nil
}
