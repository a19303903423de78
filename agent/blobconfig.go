package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/store"
)

// Stalwart's old JMAP server layout: its db-path held the RocksDB store
// in idx/ and the blob store in blobs/.
const (
	oldLayoutDB    = "idx"
	oldLayoutBlobs = "blobs"
)

// oldLayout recognises --db naming the db-path of Stalwart's old layout
// (no RocksDB store itself, but idx/ holding one and blobs/ beside it)
// and uses both parts: the store in idx/, the blob store in blobs/
// (unless Blobs names another), saying so in one log line.
func (c *Config) oldLayout() error {
	if _, err := os.Stat(filepath.Join(c.DB, "CURRENT")); !errors.Is(err, os.ErrNotExist) {
		return nil // a RocksDB store (or not readable: New says why)
	}
	idx, blobs := filepath.Join(c.DB, oldLayoutDB), filepath.Join(c.DB, oldLayoutBlobs)
	if store.CheckDir(idx) != nil {
		return nil
	}
	if st, err := os.Stat(blobs); err != nil || !st.IsDir() {
		return nil
	}
	root := c.DB
	c.DB = idx
	if c.Blobs == "" {
		c.Blobs = blobs
	}
	depth := blobfs.DefaultDepth
	if c.BlobDepth != nil {
		depth = *c.BlobDepth
	}
	c.Log.Info("--db is the db-path of Stalwart's old layout: backing up the RocksDB store in idx/ and the filesystem blob store",
		"db_path", root, "store", c.DB, "blobs", c.Blobs, "blob_depth", depth)
	return nil
}

// ErrBlobs is wrapped by New for a blob store it cannot back up.
var ErrBlobs = errors.New("blob store")

// checkBlobs fills the blob store's defaults and checks it is a
// directory tailer can read.
func (c *Config) checkBlobs() error {
	if c.Blobs == "" {
		return nil
	}
	if c.BlobDepth == nil {
		d := blobfs.DefaultDepth
		c.BlobDepth = &d
	}
	if _, err := blobfs.NewLayout(c.Blobs, *c.BlobDepth); err != nil {
		return fmt.Errorf("%w %s: %w", ErrBlobs, c.Blobs, err)
	}
	if c.BlobScanInterval <= 0 {
		c.BlobScanInterval = 10 * time.Minute
	}
	st, err := os.Stat(c.Blobs)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w (point it at Stalwart's filesystem blob store, the directory of its \"fs\" blob store)", ErrBlobs, err)
	case !st.IsDir():
		return fmt.Errorf("%w %s is not a directory", ErrBlobs, c.Blobs)
	}
	if filepath.Clean(c.Blobs) == filepath.Clean(c.DB) {
		return fmt.Errorf("%w %s is the RocksDB store itself: give the blob store's own directory", ErrBlobs, c.Blobs)
	}
	return nil
}
