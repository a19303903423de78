package uploader_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/tailer-backup/tailer/internal/miniotest"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/conformance"
)

// The conformance suite runs against every backend and wrapper tailer
// ships: a directory, MinIO (under a prefix and at a bucket's root, with
// multipart uploads), and Encrypted over both.

func openFile(t *testing.T) uploader.Replica {
	r, err := uploader.Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir())+"/replica", uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// minio opens a fresh prefix of a fresh bucket per case on one server.
func minio(t *testing.T, root bool) func(t *testing.T) uploader.Replica {
	srv := miniotest.Start(t)
	var n atomic.Int64
	return func(t *testing.T) uploader.Replica {
		bucket := fmt.Sprintf("conformance%d", n.Add(1))
		srv.CreateBucket(bucket)
		prefix := "tailer/case"
		if root {
			prefix = ""
		}
		r, err := uploader.Open(context.Background(), srv.URL(bucket, prefix), uploader.Options{
			AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, MultipartThreshold: uploader.TestThreshold,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func encrypted(open func(t *testing.T) uploader.Replica) func(t *testing.T) uploader.Replica {
	return func(t *testing.T) uploader.Replica {
		k, err := uploader.RawKey([]byte("0123456789abcdef0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := uploader.Encrypted(open(t), k)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
}

func TestFileConformance(t *testing.T) {
	t.Parallel()
	conformance.Run(t, openFile)
}

func TestS3Conformance(t *testing.T) {
	t.Parallel()
	t.Run("prefix", func(t *testing.T) {
		t.Parallel()
		conformance.Run(t, minio(t, false))
	})
	t.Run("bucket-root", func(t *testing.T) {
		t.Parallel()
		conformance.Run(t, minio(t, true))
	})
}

// TestEncryptedConformance: the wrapper meets the same contract as the
// backends it wraps.
func TestEncryptedConformance(t *testing.T) {
	t.Parallel()
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		conformance.Run(t, encrypted(openFile))
	})
	t.Run("file with a passphrase", func(t *testing.T) {
		t.Parallel()
		// keys.json, created by the first write, stays out of the listings.
		conformance.Run(t, func(t *testing.T) uploader.Replica {
			return uploader.EncryptedWithCheapKDF(t, openFile(t), "conformance passphrase")
		})
	})
	t.Run("minio", func(t *testing.T) {
		t.Parallel()
		conformance.Run(t, encrypted(minio(t, false)))
	})
}
