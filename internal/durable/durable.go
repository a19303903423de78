// Package durable holds what makes a file system change survive a crash:
// tailer's spool, the standby's sidecar and the Stalwart-format output
// all rename files into place, and a rename is only durable once the
// directory holding it is fsynced.
package durable

import (
	"fmt"
	"os"
)

// SyncDir fsyncs a directory, making the entries created, renamed or
// removed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
