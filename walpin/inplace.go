package walpin

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// InPlace reads the primary's own WAL files, read-only, where they are:
// pinning is switched off, or the directory is a snapshot's or a store's
// that tailer only inspects. It still never uses RocksDB's WAL iterator
// (GetUpdatesSince), which Debian's RocksDB 9.10 (built with assertions)
// answers with an abort under sustained load. It cannot keep a file the
// primary deletes: falling behind the primary's WAL deletion is then a
// gap, which the caller detects.
type InPlace struct {
	primary string
	log     *slog.Logger
	files   fileSet
}

var _ Source = (*InPlace)(nil)

// NewInPlace returns a source reading the WAL files of directory primary
// in place.
func NewInPlace(primary string, log *slog.Logger) *InPlace {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &InPlace{primary: primary, log: log, files: newFileSet()}
}

// Disabled implements Source: pinning is never on.
func (s *InPlace) Disabled() string {
	return "WAL pinning is switched off: batches are read from the primary's WAL files in place"
}

// Refresh implements Source: it lists the primary's WAL files; it pins
// nothing.
func (s *InPlace) Refresh() (int, error) {
	entries, err := os.ReadDir(s.primary)
	if err != nil {
		return 0, fmt.Errorf("list WAL files of %s: %w", s.primary, err)
	}
	s.files.readInPlace(s.primary, entries)
	return 0, nil
}

// OnNewFile implements Source: Next lists the directory itself, so
// there is nothing to tell.
func (s *InPlace) OnNewFile(func()) {}

// Run implements Source: there is nothing to keep between reads (Next
// lists the files itself), so it returns at once.
func (s *InPlace) Run(context.Context, time.Duration) {}

// Next implements Source. The primary's directory is listed first, so the
// newest WAL file is always seen.
func (s *InPlace) Next(ctx context.Context, cur Cursor, want, to uint64, fn func(seq uint64, data []byte) error) (Cursor, error) {
	if _, err := s.Refresh(); err != nil {
		return cur, err
	}
	return s.files.next(ctx, cur, want, to, fn)
}

// Release implements Source: the primary's files are never removed, so
// there is nothing to release.
func (s *InPlace) Release(shipped uint64) (int, error) { return s.files.release(shipped) }

// Stats implements Source: no pins.
func (s *InPlace) Stats() (files int, bytes int64) { return s.files.stats() }

// Reset implements Source: it forgets the files; it removes none.
func (s *InPlace) Reset() error { return s.files.reset() }
