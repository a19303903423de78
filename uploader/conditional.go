package uploader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ErrPreconditionFailed means a conditional write lost: the object exists
// (when it had to be absent) or changed since it was read.
var ErrPreconditionFailed = errors.New("precondition failed")

// GetVersioned reads a small object and its version (an ETag on S3, a
// content hash on a directory), for a later PutIf.
func GetVersioned(ctx context.Context, r Replica, key string) ([]byte, string, error) {
	if c, ok := r.(Conditional); ok {
		return c.GetVersioned(ctx, key)
	}
	c, ok := r.(conditional)
	if !ok {
		return nil, "", fmt.Errorf("%s: conditional writes are not supported", r)
	}
	return c.getVersioned(ctx, key)
}

// PutIf writes a small object only if its version is still ifVersion (""
// means: only if the object does not exist), and returns the new version.
// S3 and MinIO do it with If-Match / If-None-Match; a directory replica
// with an exclusive lock. It is what makes the single-writer lease safe.
func PutIf(ctx context.Context, r Replica, key string, data []byte, ifVersion string) (string, error) {
	if c, ok := r.(Conditional); ok {
		return c.PutIf(ctx, key, data, ifVersion)
	}
	c, ok := r.(conditional)
	if !ok {
		return "", fmt.Errorf("%s: conditional writes are not supported", r)
	}
	return c.putIf(ctx, key, data, ifVersion)
}

// Conditional is how a Replica implemented outside this package (a test
// double injecting faults, a wrapper) offers conditional writes to
// GetVersioned and PutIf; the methods mean what those functions do.
type Conditional interface {
	GetVersioned(ctx context.Context, key string) ([]byte, string, error)
	PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error)
}

type conditional interface {
	getVersioned(ctx context.Context, key string) ([]byte, string, error)
	putIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error)
}

func (r *s3Replica) getVersioned(ctx context.Context, key string) ([]byte, string, error) {
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.loc.bucket), Key: aws.String(r.loc.prefix + key)})
	if err != nil {
		return nil, "", r.wrapErr("get", key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, "", fmt.Errorf("%s: get %s: %w", r, key, err)
	}
	return buf.Bytes(), aws.ToString(out.ETag), nil
}

func (r *s3Replica) putIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	in := &s3.PutObjectInput{Bucket: aws.String(r.loc.bucket), Key: aws.String(r.loc.prefix + key), Body: bytes.NewReader(data)}
	if ifVersion == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifVersion)
	}
	out, err := r.client.PutObject(ctx, in)
	if err != nil {
		switch apiErrorCode(err) {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return "", fmt.Errorf("%s: put %s: %w", r, key, ErrPreconditionFailed)
		}
		return "", r.wrapErr("put", key, err)
	}
	return aws.ToString(out.ETag), nil
}

func contentVersion(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func (r *fileReplica) getVersioned(ctx context.Context, key string) ([]byte, string, error) {
	if err := validateKey(key); err != nil {
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

// putIf serialises writers with an exclusive flock on a lock file beside
// the object, then compares and replaces.
func (r *fileReplica) putIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	if err := validateKey(key); err != nil {
		return "", fmt.Errorf("%s: put: %w", r, err)
	}
	path := r.path(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("%s: put %s: %w", r, key, err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
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
