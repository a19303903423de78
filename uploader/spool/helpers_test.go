package spool

// Helpers the package's tests share (copied from package uploader's).

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/uploader"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, r uploader.Replica, key string, data []byte) {
	t.Helper()
	if err := r.Put(ctxT(t), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, r uploader.Replica, key string) []byte {
	t.Helper()
	rc, err := r.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func list(t *testing.T, r uploader.Replica, prefix string) []uploader.ObjectInfo {
	t.Helper()
	objs, err := r.List(ctxT(t), prefix)
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return objs
}

func keys(objs []uploader.ObjectInfo) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

func wantKeys(t *testing.T, r uploader.Replica, prefix string, want ...string) {
	t.Helper()
	got := keys(list(t, r, prefix))
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("list %q = %q, want %q", prefix, got, want)
	}
}

func wantNotFound(t *testing.T, r uploader.Replica, key string) {
	t.Helper()
	rc, err := r.Get(ctxT(t), key)
	if err == nil {
		rc.Close()
		t.Fatalf("get %s: found, want uploader.ErrNotFound", key)
	}
	if !errors.Is(err, uploader.ErrNotFound) {
		t.Fatalf("get %s: %v, want uploader.ErrNotFound", key, err)
	}
}

// randomBytes is deterministic pseudo-random data that does not compress,
// so nothing along the way can shortcut it.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// onlyReader hides every method but Read, forcing the streaming path.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// cancellingReader cancels its context after yielding after bytes.
type cancellingReader struct {
	r      io.Reader
	after  int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.after -= n; c.after <= 0 {
		c.cancel()
	}
	return n, err
}

func newTestFileReplica(t *testing.T) uploader.Replica {
	r, err := uploader.Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir())+"/replica", uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// clearAWSEnv keeps the developer's AWS settings out of Open.
func clearAWSEnv(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}
