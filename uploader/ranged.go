package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ReadRange reads n bytes at off of an object. Restore and `list` use it
// to read the header and trailer of segments and exports (a few KiB at
// either end) without downloading their bodies; both backends implement
// it with one request per call.
func ReadRange(ctx context.Context, r Replica, key string, off, n int64) ([]byte, error) {
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("%s: read %s: bad range %d+%d", r, key, off, n)
	}
	rr, ok := r.(rangeReader)
	if !ok {
		return nil, fmt.Errorf("%s: ranged reads are not supported", r)
	}
	if n == 0 {
		return nil, nil
	}
	return rr.readRange(ctx, key, off, n)
}

type rangeReader interface {
	readRange(ctx context.Context, key string, off, n int64) ([]byte, error)
}

func (r *fileReplica) readRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("%s: read: %w", r, err)
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
		return nil, fmt.Errorf("%s: read %s bytes %d..%d: %w", r, key, off, off+n, err)
	}
	return buf, nil
}

func (r *s3Replica) readRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("%s: read: %w", r, err)
	}
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(r.loc.bucket),
		Key:    aws.String(r.loc.prefix + key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
	})
	if err != nil {
		return nil, r.wrapErr("read", key, err)
	}
	defer out.Body.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return nil, fmt.Errorf("%s: read %s bytes %d..%d: %w", r, key, off, off+n, err)
	}
	return buf, nil
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
	b, err := ReadRange(o.Ctx, o.Replica, o.Key, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(p, b), nil
}
