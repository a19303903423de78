package uploader

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tailer-backup/tailer/internal/miniotest"
)

func TestReadRange(t *testing.T) {
	replicas := map[string]func(t *testing.T) Replica{
		"file": func(t *testing.T) Replica {
			r, err := Open(context.Background(), "file://"+filepath.Join(t.TempDir(), "b"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		"minio": func(t *testing.T) Replica {
			srv := miniotest.Start(t)
			srv.CreateBucket("ranged")
			r, err := Open(context.Background(), srv.URL("ranged", "p"), Options{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
	}
	for name, open := range replicas {
		t.Run(name, func(t *testing.T) {
			r := open(t)
			data := bytes.Repeat([]byte("0123456789"), 1000)
			ctx := context.Background()
			if err := r.Put(ctx, "a/obj", bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct{ off, n int64 }{{0, 10}, {5, 3}, {9990, 10}, {0, 10000}} {
				got, err := ReadRange(ctx, r, "a/obj", c.off, c.n)
				if err != nil {
					t.Fatalf("ReadRange(%d, %d): %v", c.off, c.n, err)
				}
				if !bytes.Equal(got, data[c.off:c.off+c.n]) {
					t.Fatalf("ReadRange(%d, %d) = %q", c.off, c.n, got)
				}
			}
			if _, err := ReadRange(ctx, r, "a/obj", 9995, 10); err == nil {
				t.Fatal("a range past the end was read")
			}
			if _, err := ReadRange(ctx, r, "a/none", 0, 1); !errors.Is(err, ErrNotFound) {
				t.Fatalf("missing object: %v, want ErrNotFound", err)
			}
			buf := make([]byte, 4)
			if n, err := (ObjectReaderAt{ctx, r, "a/obj"}).ReadAt(buf, 12); err != nil || n != 4 || string(buf) != "2345" {
				t.Fatalf("ReadAt = %d %q %v", n, buf, err)
			}
		})
	}
}
