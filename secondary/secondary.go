// Package secondary opens a live Stalwart store as a RocksDB secondary
// instance: read-only, in a scratch directory tailer owns, without the
// primary's LOCK, so Stalwart keeps running untouched. CatchUp
// (TryCatchUpWithPrimary) gives the latest sequence number (the gap and
// backwards checks) and the column families. The WAL batches themselves
// are not read through the secondary's GetUpdatesSince, which Debian's
// RocksDB 9.10 answers with an assertion abort under sustained load, but
// from the WAL files by package walpin.
//
// Values are never iterated through the secondary: RocksDB 9.10 crashes
// iterating a family with blob files (Stalwart's t) on a secondary; full
// exports read a hard-linked snapshot instead (package snapshot).
package secondary

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/segment"
)

// Secondary is an open secondary instance of a primary store.
type Secondary struct {
	primary string
	scratch string
	st      *store.Store
	lin     lineage
}

// Open opens primary as a secondary with every family found on disk and
// Stalwart's merge operator, keeping RocksDB's secondary files (its info
// log, nothing else) in scratch. It refuses a scratch directory inside the
// primary's directory: tailer never writes there.
func Open(primary, scratch string) (*Secondary, error) {
	primary, scratch, err := checkDirs(primary, scratch)
	if err != nil {
		return nil, err
	}
	names, err := store.ListFamilies(primary)
	if err != nil {
		return nil, err
	}
	lin, err := readLineage(primary)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(scratch, "secondary")
	if _, err := owned.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("create secondary scratch dir %s: %w", dir, err)
	}
	opts := grocksdb.NewDefaultOptions()
	// A secondary must keep every SST open: the primary may delete a file
	// it still references between two catch-ups.
	opts.SetMaxOpenFiles(-1)
	spec := stalwart.NewOpenSpec(names, false)
	db, handles, err := grocksdb.OpenDbAsSecondaryColumnFamilies(opts, primary, dir, spec.Names, spec.Options)
	if err != nil {
		spec.Destroy()
		opts.Destroy()
		return nil, fmt.Errorf("open %s as secondary (scratch %s): %w", primary, dir, err)
	}
	return &Secondary{primary: primary, scratch: scratch, st: store.Attach(db, handles, opts, spec), lin: lin}, nil
}

// checkDirs resolves both paths and refuses a scratch or spool inside the
// primary's directory.
func checkDirs(primary, scratch string) (string, string, error) {
	p, err := filepath.Abs(primary)
	if err != nil {
		return "", "", fmt.Errorf("primary path %s: %w", primary, err)
	}
	s, err := filepath.Abs(scratch)
	if err != nil {
		return "", "", fmt.Errorf("scratch path %s: %w", scratch, err)
	}
	if Inside(s, p) {
		return "", "", fmt.Errorf("scratch directory %s is inside the primary's directory %s: tailer never writes there; choose a directory beside it on the same filesystem (e.g. %s)", s, p, DefaultScratch(p))
	}
	return p, s, nil
}

// CatchUp applies the primary's new MANIFEST and WAL entries. It checks
// the store's lineage first and returns ErrReplaced instead of letting
// RocksDB follow a swapped MANIFEST (which aborts the process).
func (s *Secondary) CatchUp() error {
	if err := s.CheckLineage(); err != nil {
		return err
	}
	if err := s.st.DB.TryCatchUpWithPrimary(); err != nil {
		return fmt.Errorf("catch up with primary %s: %w", s.primary, err)
	}
	return nil
}

// LatestSeq is the newest sequence number the secondary has applied.
func (s *Secondary) LatestSeq() uint64 { return s.st.DB.GetLatestSequenceNumber() }

// Identity returns the primary's DB identity (its IDENTITY file), which
// changes when the store is replaced; a change starts a new generation.
func (s *Secondary) Identity() (string, error) { return ReadIdentity(s.primary) }

// ReadIdentity reads a store's IDENTITY file.
func ReadIdentity(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "IDENTITY"))
	if err != nil {
		return "", fmt.Errorf("read DB identity of %s: %w", dir, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Families returns the column-family table (RocksDB id, name, merge
// operator) that segments record so restore can map ids to names.
func (s *Secondary) Families() []segment.Family { return s.st.FamilyTable() }

// Primary is the primary's directory.
func (s *Secondary) Primary() string { return s.primary }

// Close releases the secondary instance.
func (s *Secondary) Close() { s.st.Close() }

// Store is the secondary's store, as of its last catch-up, for lookups
// beside the WAL (the owner of a blob the agent cannot find).
func (s *Secondary) Store() *store.Store { return s.st }
