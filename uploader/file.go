package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/tailer-backup/tailer/internal/durable"
)

// fileReplica stores objects as files under a directory, with the same
// layout as a bucket. Put writes a temp file beside the target, fsyncs it,
// renames it into place and fsyncs the directory, so an object is either
// absent or complete and durable, even across a power loss.
type fileReplica struct {
	root string // absolute, cleaned
}

func newFileReplica(root string) *fileReplica { return &fileReplica{root: root} }

// String returns the file:// URL of the directory.
func (r *fileReplica) String() string { return "file://" + filepath.ToSlash(r.root) }

// Identity implements Identifier: the file:// URL of the cleaned absolute
// directory, which is what String shows already.
func (r *fileReplica) Identity() string { return r.String() }

func (r *fileReplica) path(key string) string {
	return filepath.Join(r.root, filepath.FromSlash(key))
}

// Put implements Replica.
func (r *fileReplica) Put(ctx context.Context, key string, src io.Reader, size int64) (err error) {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("%s: put: %w", r, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: put %s: %w", r, key, err)
	}
	dst := r.path(key)
	dir := filepath.Dir(dst)
	if err := mkdirAllSync(dir, 0o750); err != nil {
		return fmt.Errorf("%s: put %s: %w", r, key, err)
	}
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("%s: put %s: %w", r, key, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	in := io.Reader(ctxReader{ctx, src})
	if size >= 0 {
		in = &exactReader{r: in, n: size}
	}
	if _, err := io.CopyBuffer(tmp, in, make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("%s: put %s: write: %w", r, key, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("%s: put %s: fsync: %w", r, key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: put %s: close: %w", r, key, err)
	}
	// Last chance to honour a cancellation before the object becomes visible.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: put %s: %w", r, key, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("%s: put %s: %w", r, key, err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("%s: put %s: %w", r, key, err)
	}
	return nil
}

// Get implements Replica. The returned reader stops when ctx ends.
func (r *fileReplica) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("%s: get: %w", r, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: get %s: %w", r, key, err)
	}
	f, err := os.Open(r.path(key))
	if notExist(err) {
		return nil, fmt.Errorf("%s: get %s: %w", r, key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get %s: %w", r, key, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: get %s: %w", r, key, err)
		}
		// A directory is a key prefix, not an object.
		return nil, fmt.Errorf("%s: get %s: %w", r, key, ErrNotFound)
	}
	return ctxFile{ctxReader{ctx, f}, f}, nil
}

// ctxFile is the reader Get returns: reads check ctx, Close closes the file.
type ctxFile struct {
	ctxReader
	io.Closer
}

// List implements Replica. It walks only the directory named by the part
// of prefix before its last '/', so listing one generation does not read
// the others.
func (r *fileReplica) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if !prefixCanMatch(prefix) {
		return nil, nil // and must not walk outside the root ("../")
	}
	start := r.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = r.path(prefix[:i])
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if notExist(err) {
				return nil // an empty replica, or a directory deleted meanwhile
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		rel, err := filepath.Rel(r.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted between readdir and stat
		}
		if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list %q: %w", r, prefix, err)
	}
	// WalkDir's per-directory order is not key order ("a-b" < "a/b").
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements Replica.
func (r *fileReplica) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("%s: delete: %w", r, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: delete %s: %w", r, key, err)
	}
	p := r.path(key)
	if err := os.Remove(p); err != nil {
		if notExist(err) {
			return nil
		}
		return fmt.Errorf("%s: delete %s: %w", r, key, err)
	}
	if err := durable.SyncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("%s: delete %s: %w", r, key, err)
	}
	return nil
}

// notExist reports whether err means "no such object": the path is
// absent, or one of its parent elements is an object (a file), not a
// directory.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// mkdirAllSync is os.MkdirAll that also fsyncs the parent of every
// directory it creates, so a new object's directory entry chain is as
// durable as the object itself. mode is for the directories it creates.
func mkdirAllSync(dir string, mode os.FileMode) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent, mode); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return durable.SyncDir(parent)
}
