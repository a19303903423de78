package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Replica is one bucket-like destination for tailer objects, and the
// whole contract a backend must meet: every method is required, and
// package uploader/conformance checks each guarantee below against a real
// backend (file://, MinIO, and Encrypted over both).
//
// Keys are relative to the replica URL's prefix and '/'-separated, e.g.
// "generations/20261203T133721.630Z-649cef/segments/000000000000003d-000000000000005a.tseg".
// Every method that takes a key rejects an invalid one (see ValidateKey)
// with an error, before contacting the backend.
//
// Objects are immutable: tailer writes each once under its final name, so
// every implementation must make Put atomic — a reader (a restore running
// at the same time, or one after a crash) sees the whole object or nothing
// — and read-after-write consistent: once Put returns nil, Get, ReadRange,
// List and ListAfter by anyone see the object (S3 has been strongly
// consistent since 2020; MinIO is; a directory is after the rename).
// Writers of different keys may run concurrently without coordination.
type Replica interface {
	// Put stores r under key. size is the exact number of bytes r yields
	// (-1 if unknown); a reader that ends early is an error and leaves
	// nothing visible. Overwriting an object with the same bytes is fine,
	// which makes retried uploads idempotent.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object stored under key; the error wraps ErrNotFound
	// when there is none. The caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// ReadRange returns exactly n bytes of the object at offset off, with
	// one request: restore, verify and `list` read the header and trailer
	// of segments and exports (a few KiB at either end) without
	// downloading their bodies. n == 0 returns no bytes and no error
	// without a request (it does not check the key exists); a negative off
	// or n is an error; a range reaching past the object's end is an error
	// wrapping io.ErrUnexpectedEOF, never a short result; an absent object
	// wraps ErrNotFound.
	ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// List returns every object whose key starts with prefix (a plain
	// string prefix, not necessarily ending in '/'), sorted by key, however
	// many there are. A prefix no valid key can start with lists nothing.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// ListAfter is List restricted to keys that sort strictly after
	// startAfter (byte order; startAfter need not exist or start with
	// prefix), done on the server where it can be (S3's StartAfter): a
	// reader that only needs what is new, such as the warm standby
	// polling every second, pays for the few newest keys instead of
	// paging through the replica's whole history.
	ListAfter(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error)
	// Delete removes the object under key; an absent object is not an
	// error, so compaction and retention can be retried blindly.
	Delete(ctx context.Context, key string) error
	// GetVersioned reads a small object whole with its version (an ETag
	// on S3, a content hash on a directory), for a later PutIf. An absent
	// object wraps ErrNotFound.
	GetVersioned(ctx context.Context, key string) (data []byte, version string, err error)
	// PutIf is the conditional write the single-writer lease is built
	// on: it stores data under key only if the object's version is still
	// ifVersion, or, with ifVersion "", only if no object exists
	// (create-if-absent), and returns the new version. The check and the
	// write are one atomic step against every other PutIf: of concurrent
	// writers with the same ifVersion exactly one wins. A loser (the
	// object exists, changed, or is gone) gets an error wrapping
	// ErrPreconditionFailed and changes nothing. S3 sends it once, not
	// retried (see the package comment).
	PutIf(ctx context.Context, key string, data []byte, ifVersion string) (version string, err error)
	// Identity names where the objects live independently of how the URL
	// was spelled: String shows the URL as given (with the region,
	// path-style and endpoint overrides in effect), which changes when an
	// operator adds --s3-region or rewrites the endpoint, while the
	// objects, and so the spool queued for them, stay the same. For s3 it
	// is the endpoint's host (lower-cased, without the scheme's default
	// port), the bucket and the prefix (with its trailing slash); for
	// file, the cleaned absolute path. Two replicas with the same
	// Identity hold the same objects; a wrapper returns its inner one's.
	Identity() string
	// String returns the replica URL for logs and errors. It never
	// contains credentials.
	String() string
}

// ObjectInfo describes one stored object, as List reports it: enough to
// plan a restore (names encode sequence ranges) and show lag (Modified).
type ObjectInfo struct {
	Key      string    // relative to the replica prefix
	Size     int64     // bytes
	Modified time.Time // when the replica stored it
}

// ErrNotFound is wrapped by Get when the key does not exist, so callers
// can tell "absent" (errors.Is) from "the replica is unreachable".
var ErrNotFound = errors.New("object not found")

// ErrPreconditionFailed is wrapped by PutIf when the conditional write
// lost: the object exists (when it had to be absent), changed since it was
// read, or is gone.
var ErrPreconditionFailed = errors.New("precondition failed")

// ErrBucketNotFound is wrapped by S3 operations when the bucket itself does
// not exist: unlike a missing object this needs an operator (create the
// bucket), and restore must not mistake it for an empty bucket.
var ErrBucketNotFound = errors.New("bucket does not exist")

// TempPrefix starts the name of every file the file backend (and the
// spool) writes before renaming it into place. Keys may not use it
// (ValidateKey), so a directory listing can skip half-written files
// without ambiguity.
const TempPrefix = ".tmp-"

// maxKeyLen is S3's key limit; the file backend uses the same so a key
// valid on one backend is valid on the other.
const maxKeyLen = 1024

// ValidateKey rejects keys that could escape the replica prefix on a file
// system ("..", absolute paths), that S3 and a directory would treat
// differently (empty or "." elements, backslashes), or that collide with
// temporary files. Both backends and the spool apply it so they behave
// the same.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return errors.New("invalid key: empty")
	case len(key) > maxKeyLen:
		return fmt.Errorf("invalid key %.40q...: longer than %d bytes", key, maxKeyLen)
	case strings.ContainsAny(key, "\\\x00"):
		return fmt.Errorf("invalid key %q: contains a backslash or NUL", key)
	}
	for _, elem := range strings.Split(key, "/") {
		switch {
		case elem == "":
			return fmt.Errorf("invalid key %q: empty path element (leading, trailing or double '/')", key)
		case elem == "." || elem == "..":
			return fmt.Errorf("invalid key %q: %q path element", key, elem)
		case strings.HasPrefix(elem, TempPrefix):
			return fmt.Errorf("invalid key %q: elements starting with %q are reserved for temporary files", key, TempPrefix)
		}
	}
	return nil
}

// prefixCanMatch reports whether any valid key can start with prefix.
// Every such key has the part of prefix before its last '/' as whole path
// elements, so if that part is not a valid key (e.g. "../", "a//"),
// nothing matches. Both backends answer such a List with an empty result.
func prefixCanMatch(prefix string) bool {
	i := strings.LastIndexByte(prefix, '/')
	return i < 0 || ValidateKey(prefix[:i]) == nil
}

// checkRange rejects a negative range, for ReadRange implementations.
func checkRange(r Replica, key string, off, n int64) error {
	if off < 0 || n < 0 {
		return fmt.Errorf("%s: read %s: bad range %d+%d", r, key, off, n)
	}
	return nil
}

// ObjectReaderAt adapts a replica object to io.ReaderAt with ranged reads,
// so segment.Open can validate an object's framing and read its header
// and trailer in place. Each ReadAt is one request: use it for the small
// reads at an object's ends, and Download for bodies.
type ObjectReaderAt struct {
	Ctx     context.Context
	Replica Replica
	Key     string
}

// ReadAt implements io.ReaderAt.
func (o ObjectReaderAt) ReadAt(p []byte, off int64) (int, error) {
	b, err := o.Replica.ReadRange(o.Ctx, o.Key, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(p, b), nil
}

// ctxReader makes a long copy from a local file stop when ctx ends, since
// plain file reads never look at a context.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// exactReader yields exactly n bytes of r and fails with
// io.ErrUnexpectedEOF if r ends sooner, so a short source aborts an upload
// instead of storing a truncated object.
type exactReader struct {
	r io.Reader
	n int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= int64(n)
	if err == io.EOF {
		if e.n > 0 {
			return n, fmt.Errorf("source ended %d bytes before the declared size: %w", e.n, io.ErrUnexpectedEOF)
		}
		if n > 0 {
			err = nil
		}
	}
	return n, err
}
