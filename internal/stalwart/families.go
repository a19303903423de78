package stalwart

// Families016 lists the column families Stalwart 0.16 opens, in its own
// order, plus "default", which RocksDB always has and Stalwart never
// writes. The load generator creates exactly these. Readers must not rely
// on this list: they open every family found on disk (ListColumnFamilies),
// because older and newer Stalwart versions have other letters.
var Families016 = []string{
	"default",
	"n", "u", "y", "t", "i", "a", "f", "j", "k", "m", "p", "s", "e",
	"q", "h", "r", "l", "o", "x", "z", "w", "b", "g", "d", "v", "c",
}

// MergeOperatorName is the name under which Stalwart registers its counter
// merge operator; it is recorded in generation.json and segment headers.
const MergeOperatorName = "merge"

// HasMergeOperator reports whether Stalwart registers its merge operator on
// the family: the counters n (per-account ids, quotas), u (queue quotas)
// and y (in-memory counters).
func HasMergeOperator(family string) bool {
	switch family {
	case "n", "u", "y":
		return true
	}
	return false
}

// BlobFamily is the family Stalwart stores message blobs in with RocksDB's
// integrated BlobDB (enable_blob_files). Iterating it through a secondary
// instance crashes RocksDB 9.10, which is why full exports read from a
// hard-linked snapshot instead.
const BlobFamily = "t"

// ChangelogFamily is the `l` subspace: per-account change log entries.
const ChangelogFamily = "l"

// BlobMinSize is Stalwart's min_blob_size for family t (sic: 16834).
const BlobMinSize = 16834
