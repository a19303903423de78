package uploader

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tailer-backup/tailer/internal/durable"
)

// Download copies the object under key to the local file path, for
// restore. Like Put, it is atomic and durable: the data goes to a temp
// file beside path, is fsynced, renamed over path and the directory
// fsynced, so path never holds a partial object. The parent directory
// must exist. It returns the number of bytes written.
func Download(ctx context.Context, r Replica, key, path string) (n int64, err error) {
	rc, err := r.Get(ctx, key)
	if err != nil {
		return 0, err // already names the replica and the key
	}
	defer rc.Close()
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return 0, fmt.Errorf("download %s from %s to %s: %w", key, r, path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err = io.CopyBuffer(tmp, ctxReader{ctx, rc}, make([]byte, 1<<20))
	if err != nil {
		return n, fmt.Errorf("download %s from %s to %s: after %d bytes: %w", key, r, path, n, err)
	}
	if err := tmp.Sync(); err != nil {
		return n, fmt.Errorf("download %s from %s to %s: fsync: %w", key, r, path, err)
	}
	if err := tmp.Close(); err != nil {
		return n, fmt.Errorf("download %s from %s to %s: close: %w", key, r, path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return n, fmt.Errorf("download %s from %s to %s: %w", key, r, path, err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return n, fmt.Errorf("download %s from %s to %s: %w", key, r, path, err)
	}
	return n, nil
}
