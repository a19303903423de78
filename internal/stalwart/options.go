package stalwart

import (
	"github.com/linxGnu/grocksdb"
)

// FamilyOptions returns the options tailer opens a family with: Stalwart's
// merge operator where Stalwart has one, and integrated blob files on the
// blob family when writable is set (a restore target), so that a restored
// store looks to Stalwart like the one it wrote. The caller destroys the
// returned options after the DB using them is closed.
func FamilyOptions(family string, writable bool) *grocksdb.Options {
	o := grocksdb.NewDefaultOptions()
	if HasMergeOperator(family) {
		o.SetMergeOperator(CounterMerge{})
	}
	if writable && family == BlobFamily {
		o.EnableBlobFiles(true)
		o.SetMinBlobSize(BlobMinSize)
	}
	if writable {
		bb := grocksdb.NewDefaultBlockBasedTableOptions()
		bb.SetFormatVersion(6)
		o.SetBlockBasedTableFactory(bb)
	}
	return o
}

// OpenSpec is the list of families and their options, in the shape
// grocksdb's Open*ColumnFamilies functions take.
type OpenSpec struct {
	Names   []string
	Options []*grocksdb.Options
}

// NewOpenSpec builds the per-family options for names.
func NewOpenSpec(names []string, writable bool) OpenSpec {
	s := OpenSpec{Names: append([]string(nil), names...)}
	for _, n := range names {
		s.Options = append(s.Options, FamilyOptions(n, writable))
	}
	return s
}

// Destroy frees the options; call it after the DB is closed.
//
// Options that carry the merge operator are deliberately not destroyed:
// RocksDB's C API hands the operator to a shared_ptr inside the options,
// which deletes it with them, and grocksdb v1.9.8's Options.Destroy then
// deletes it a second time (SIGSEGV in rocksdb_mergeoperator_destroy, seen
// here). Leaking three small option objects per open is the safe choice;
// tailer opens a store a handful of times per generation.
func (s OpenSpec) Destroy() {
	for i, o := range s.Options {
		if HasMergeOperator(s.Names[i]) {
			continue
		}
		o.Destroy()
	}
}
