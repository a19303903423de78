package uploader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Identity implements Replica: the file:// URL of the cleaned absolute
// directory, which is what String shows already.
func (r *fileReplica) Identity() string { return r.String() }

func (r *fileReplica) path(key string) string {
	return filepath.Join(r.root, filepath.FromSlash(key))
}

// Put implements Replica.
func (r *fileReplica) Put(ctx context.Context, key string, src io.Reader, size int64) (err error) {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("%s: put: %w", r, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: put %s: %w", r, key, err)
	}
	dst := r.path(key)
	dir := filepath.Dir(dst)
	if err := durable.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("%s: put %s: %w", r, key, err)
	}
	tmp, err := os.CreateTemp(dir, TempPrefix+"*")
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
	if err := ValidateKey(key); err != nil {
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
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), TempPrefix) {
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
	if err := ValidateKey(key); err != nil {
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

// ListAfter implements Replica by filtering List: a directory has no
// cheaper way to start a listing part-way.
func (r *fileReplica) ListAfter(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	objs, err := r.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(objs), func(i int) bool { return objs[i].Key > startAfter })
	return objs[i:], nil
}

// ReadRange implements Replica with one pread.
func (r *fileReplica) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("%s: read: %w", r, err)
	}
	if err := checkRange(r, key, off, n); err != nil || n == 0 {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(r.path(key))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: read %s: %w", r, key, ErrNotFound)
		}
		return nil, fmt.Errorf("%s: read %s: %w", r, key, err)
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // past the end: the contract's error
		}
		return nil, fmt.Errorf("%s: read %s bytes %d..%d: %w", r, key, off, off+n, err)
	}
	return buf, nil
}

// GetVersioned implements Replica: the version is a content hash.
func (r *fileReplica) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	if err := ValidateKey(key); err != nil {
		return nil, "", fmt.Errorf("%s: get: %w", r, err)
	}
	b, err := os.ReadFile(r.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("%s: get %s: %w", r, key, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: get %s: %w", r, key, err)
	}
	return b, contentVersion(b), nil
}

func contentVersion(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// PutIf implements Replica. It serialises writers with an exclusive flock
// on a lock file beside the object, then compares and replaces. The lock
// file's name starts with TempPrefix, so List never reports it (no key
// can take its name).
func (r *fileReplica) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", fmt.Errorf("%s: put: %w", r, err)
	}
	path := r.path(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("%s: put %s: %w", r, key, err)
	}
	lock, err := os.OpenFile(filepath.Join(filepath.Dir(path), TempPrefix+"lock-"+filepath.Base(path)), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("%s: lock %s: %w", r, key, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("%s: lock %s: %w", r, key, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	cur, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if ifVersion != "" {
			return "", fmt.Errorf("%s: put %s: it is gone: %w", r, key, ErrPreconditionFailed)
		}
	case err != nil:
		return "", fmt.Errorf("%s: put %s: %w", r, key, err)
	case ifVersion == "" || contentVersion(cur) != ifVersion:
		return "", fmt.Errorf("%s: put %s: %w", r, key, ErrPreconditionFailed)
	}
	if err := r.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return "", err
	}
	return contentVersion(data), nil
}
