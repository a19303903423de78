// Package store wraps a grocksdb database opened with every column family
// on disk and Stalwart's per-family options, so that snapshot/, restore/,
// the digest command and the load generator open stores the same way and
// never forget the merge operator (without it a merge record cannot be
// read). Secondary instances live in secondary/, which builds on this.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/segment"
)

// Family is one open column family.
type Family struct {
	Name   string
	Handle *grocksdb.ColumnFamilyHandle
}

// Store is an open RocksDB database and its families, in the order
// ListColumnFamilies returned them ("default" first).
type Store struct {
	DB       *grocksdb.DB
	Families []Family
	opts     *grocksdb.Options
	spec     stalwart.OpenSpec
	byName   map[string]*grocksdb.ColumnFamilyHandle
}

// ListFamilies returns the column families recorded in the MANIFEST of the
// database in dir. It reads only; it is safe against a running primary.
func ListFamilies(dir string) ([]string, error) {
	if err := checkRocksDir(dir); err != nil {
		return nil, err
	}
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	names, err := grocksdb.ListColumnFamilies(o, dir)
	if err != nil {
		return nil, fmt.Errorf("list column families of %s: %w", dir, err)
	}
	return names, nil
}

// CheckDir turns the common operator mistakes (no such directory, a
// directory that is not a RocksDB store, one tailer may not read) into
// errors that say what to do, before RocksDB answers with something
// cryptic. Everything that opens or snapshots a store calls it first.
func CheckDir(dir string) error { return checkRocksDir(dir) }

func checkRocksDir(dir string) error {
	denied := func(err error) error {
		return fmt.Errorf("cannot read RocksDB directory %s: %w: run tailer as a user that can read Stalwart's store (its owner or group)", dir, errors.Unwrap(err))
	}
	st, err := os.Stat(dir)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("RocksDB directory %s does not exist: %w", dir, pointDB(" (RocksDb.path in its config)"))
		case errors.Is(err, os.ErrPermission):
			return denied(err)
		}
		return fmt.Errorf("RocksDB directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("RocksDB directory %s is not a directory: %w", dir, pointDB(""))
	}
	if _, err := os.Stat(filepath.Join(dir, "CURRENT")); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return denied(err)
		}
		return fmt.Errorf("%s is not a RocksDB store (no CURRENT file): %w", dir, pointDB(""))
	}
	// CURRENT can be stat'ed in a directory tailer may not list (x
	// without r); RocksDB needs to list it.
	f, err := os.Open(dir)
	if err == nil {
		_, err = f.Readdirnames(1)
		f.Close()
	}
	if err != nil && errors.Is(err, os.ErrPermission) {
		return denied(err)
	}
	return nil
}

// OpenReadOnly opens dir read-only with every family on disk. RocksDB
// replays the WAL into memory without writing anything.
func OpenReadOnly(dir string) (*Store, error) {
	names, err := ListFamilies(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{opts: grocksdb.NewDefaultOptions(), spec: stalwart.NewOpenSpec(names, false)}
	db, handles, err := grocksdb.OpenDbForReadOnlyColumnFamilies(s.opts, dir, s.spec.Names, s.spec.Options, false)
	if err != nil {
		s.free()
		return nil, fmt.Errorf("open %s read-only: %w", dir, err)
	}
	s.attach(db, handles)
	return s, nil
}

// OpenWritable opens (and with create, creates) a database in dir with the
// given families, Stalwart's options on each. It is for restore targets and
// the load generator's primary; tailer never opens a live store this way.
func OpenWritable(dir string, families []string, create bool, tune func(*grocksdb.Options)) (*Store, error) {
	s := &Store{opts: grocksdb.NewDefaultOptions()}
	s.opts.SetCreateIfMissing(create)
	s.opts.SetCreateIfMissingColumnFamilies(create)
	if tune != nil {
		tune(s.opts)
	}
	if !contains(families, "default") {
		families = append([]string{"default"}, families...)
	}
	s.spec = stalwart.NewOpenSpec(families, true)
	if tune != nil {
		for _, o := range s.spec.Options {
			tune(o)
		}
	}
	db, handles, err := grocksdb.OpenDbColumnFamilies(s.opts, dir, s.spec.Names, s.spec.Options)
	if err != nil {
		s.free()
		return nil, fmt.Errorf("open %s for writing: %w", dir, err)
	}
	s.attach(db, handles)
	return s, nil
}

// Attach wraps a database opened elsewhere (secondary/) so callers get the
// same family lookup and digest code. Close frees the options too.
// The handles are in spec.Names order.
func Attach(db *grocksdb.DB, handles []*grocksdb.ColumnFamilyHandle, opts *grocksdb.Options, spec stalwart.OpenSpec) *Store {
	s := &Store{opts: opts, spec: spec}
	s.attach(db, handles)
	return s
}

func (s *Store) attach(db *grocksdb.DB, handles []*grocksdb.ColumnFamilyHandle) {
	s.DB = db
	s.byName = make(map[string]*grocksdb.ColumnFamilyHandle, len(handles))
	for i, h := range handles {
		name := s.spec.Names[i]
		s.Families = append(s.Families, Family{Name: name, Handle: h})
		s.byName[name] = h
	}
}

// Handle returns the family's handle, or nil if the store has no such family.
func (s *Store) Handle(name string) *grocksdb.ColumnFamilyHandle { return s.byName[name] }

// Names returns the family names in open order.
func (s *Store) Names() []string { return append([]string(nil), s.spec.Names...) }

// Close closes the database and frees its handles and options.
func (s *Store) Close() {
	for _, f := range s.Families {
		f.Handle.Destroy()
	}
	s.Families = nil
	if s.DB != nil {
		s.DB.Close()
		s.DB = nil
	}
	s.free()
}

func (s *Store) free() {
	s.spec.Destroy()
	if s.opts != nil {
		s.opts.Destroy()
		s.opts = nil
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// FamilyTable returns the column-family table (RocksDB id, name, merge
// operator) that segments and exports record, so a restore can map the
// numeric ids inside WAL batches to names and recreate the families.
func (s *Store) FamilyTable() []segment.Family {
	out := make([]segment.Family, 0, len(s.Families))
	for _, f := range s.Families {
		fam := segment.Family{ID: f.Handle.ID(), Name: f.Name}
		if stalwart.HasMergeOperator(f.Name) {
			fam.MergeOperator = stalwart.MergeOperatorName
		}
		out = append(out, fam)
	}
	return out
}

// pointDB is the advice for a store directory that is not a store.
func pointDB(more string) *setting.Error {
	return &setting.Error{Key: "DB", Name: "the store directory", Before: "point ", After: " at Stalwart's store path" + more}
}
