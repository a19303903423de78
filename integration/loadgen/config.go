package loadgen

import (
	"errors"
	"fmt"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/stalwart"
)

// Defaults for Config's zero values, chosen so that a test of a few
// thousand transactions sees flushes, blob files and changelog purges.
const (
	DefaultAccounts        = 20
	DefaultWriteBufferSize = 1 << 20
	DefaultLargeBlobShare  = 0.30
	DefaultSmallBlobMax    = 8 << 10
	DefaultLargeBlobMax    = 48 << 10
	DefaultChangesHistory  = 64
)

// Config describes the primary store to create and the shape of its load.
// Zero values take the defaults above.
type Config struct {
	// Dir is the primary's RocksDB directory; it is created. It must not
	// exist, be empty, or (with Reset) hold a RocksDB store.
	Dir string
	// Seed makes the content a pure function of Seed and transaction
	// number: the same Config writes the same store.
	Seed int64
	// Accounts is the number of mail accounts (ids 1..Accounts). Default 20.
	Accounts int
	// WriteBufferSize is every family's memtable size. Default 1 MiB, far
	// below RocksDB's 64 MiB, so flushes and WAL rotation happen often.
	WriteBufferSize uint64
	// MaxTotalWALSize caps the live WAL: beyond it RocksDB flushes the
	// families that hold the oldest WAL file and deletes it, so WAL files
	// disappear every few hundred transactions even though quiet families
	// (u, y, j...) rarely fill a memtable. 0 means 8 x WriteBufferSize;
	// negative leaves RocksDB's default (4 x the sum of all memtables), as
	// Stalwart does (it never sets this option), so WALs live much longer.
	MaxTotalWALSize int64
	// LargeBlobShare is the share of deliveries whose blob is larger than
	// stalwart.BlobMinSize and so lands in a blob file. 0 means the default
	// (0.30); negative means none.
	LargeBlobShare float64
	// SmallBlobMax is the largest small blob (small ones are 1 KiB..this).
	// Default 8 KiB; it must stay below stalwart.BlobMinSize.
	SmallBlobMax int
	// LargeBlobMax is the largest large blob. Default 48 KiB.
	LargeBlobMax int
	// ChangesHistory is the number of changelog entries the purge keeps
	// per account and collection (Stalwart's maxChangesHistory, 10000 by
	// default there; small here so purges happen in short runs). Default 64.
	ChangesHistory int
	// BlobDir, when set, puts message bodies in a filesystem blob store
	// there, as Stalwart's "fs" blob store does, instead of family t: each
	// written without a temporary name (create, then two or more writes,
	// no rename, no fsync), with its links in k in Stalwart's order (a
	// temporary link, the file, the commit key, then the message's
	// document link replacing the temporary one), and the blob purge
	// removing files before their keys. It must not exist or be empty.
	BlobDir string
	// BetweenBlobWrites, if set, is called between the writes of every
	// blob file with its path, so a test can look at a half-written file.
	BetweenBlobWrites func(path string)
	// BlobDepth is the blob store's directory depth (Stalwart's "depth").
	// 0 means blobfs.DefaultDepth (2); negative means no levels.
	BlobDepth int
	// BlobPurgeDelay is how long a blob whose last link went away waits
	// for the purge (file, then commit key, as Stalwart's purge deletes
	// them). Stalwart purges on a schedule (daily by default), so a dead
	// blob stays on disk, committed, for a while; a backup that ships
	// within the delay misses no blob. Until then the blob is dead: no
	// link holds it and marks do not reference it (bloblink's Required).
	// 0 purges at once, a few orphans at a time on expunges (the
	// generator's first model; the store is then a function of the seed
	// alone); with a delay the purge follows Clock, so which blobs are
	// gone at a point depends on timing. Negative is an error.
	BlobPurgeDelay time.Duration
	// Clock is the generator's clock for BlobPurgeDelay; nil means
	// time.Now. Tests inject one to step over the delay.
	Clock func() time.Time
	// Reset lets Open destroy a RocksDB store already in Dir and start a
	// fresh one; without it such a Dir is an error, so that a mistyped
	// path never wipes a store.
	Reset bool
	// AfterTx, if set, is called by Run after every transaction, on Run's
	// goroutine, so a caller can report progress, take marks or flush
	// between transactions; an error stops Run and is returned by it.
	AfterTx func(Tx) error
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("loadgen: Config.Dir is empty")
	}
	if c.Accounts == 0 {
		c.Accounts = DefaultAccounts
	}
	if c.WriteBufferSize == 0 {
		c.WriteBufferSize = DefaultWriteBufferSize
	}
	if c.MaxTotalWALSize == 0 {
		c.MaxTotalWALSize = 8 * int64(c.WriteBufferSize)
	}
	if c.LargeBlobShare == 0 {
		c.LargeBlobShare = DefaultLargeBlobShare
	}
	if c.LargeBlobShare < 0 {
		c.LargeBlobShare = 0
	}
	if c.SmallBlobMax == 0 {
		c.SmallBlobMax = DefaultSmallBlobMax
	}
	if c.LargeBlobMax == 0 {
		c.LargeBlobMax = DefaultLargeBlobMax
	}
	if c.ChangesHistory == 0 {
		c.ChangesHistory = DefaultChangesHistory
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.BlobDepth == 0 {
		c.BlobDepth = blobfs.DefaultDepth
	}
	if c.BlobDepth < 0 {
		c.BlobDepth = 0
	}
	switch {
	case c.Accounts < 1:
		return c, fmt.Errorf("loadgen: Accounts %d < 1", c.Accounts)
	case c.Accounts > 1<<20:
		return c, fmt.Errorf("loadgen: Accounts %d is more than this generator models", c.Accounts)
	case c.BlobPurgeDelay < 0:
		return c, fmt.Errorf("loadgen: BlobPurgeDelay %v is negative; use 0 to purge at once", c.BlobPurgeDelay)
	case c.LargeBlobShare > 1:
		return c, fmt.Errorf("loadgen: LargeBlobShare %v > 1", c.LargeBlobShare)
	case c.SmallBlobMax < 1024 || c.SmallBlobMax >= stalwart.BlobMinSize:
		return c, fmt.Errorf("loadgen: SmallBlobMax %d must be in [1024, %d)", c.SmallBlobMax, stalwart.BlobMinSize)
	case c.LargeBlobMax <= stalwart.BlobMinSize:
		return c, fmt.Errorf("loadgen: LargeBlobMax %d must exceed %d", c.LargeBlobMax, stalwart.BlobMinSize)
	case c.ChangesHistory < 1:
		return c, fmt.Errorf("loadgen: ChangesHistory %d < 1", c.ChangesHistory)
	case c.WriteBufferSize < 64<<10:
		return c, fmt.Errorf("loadgen: WriteBufferSize %d below 64 KiB", c.WriteBufferSize)
	}
	return c, nil
}
