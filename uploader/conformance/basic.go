package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/uploader"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Put stores data under key or fails the test. Put, Get, List, Keys,
// WantKeys, WantNotFound and RandomBytes are exported for the tests of
// code built on a Replica (the spool's), so they need not copy them.
func Put(t *testing.T, r uploader.Replica, key string, data []byte) {
	t.Helper()
	if err := r.Put(ctxT(t), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// Get returns the whole object under key or fails the test.
func Get(t *testing.T, r uploader.Replica, key string) []byte {
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

// List lists prefix or fails the test.
func List(t *testing.T, r uploader.Replica, prefix string) []uploader.ObjectInfo {
	t.Helper()
	objs, err := r.List(ctxT(t), prefix)
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return objs
}

// Keys are the objects' keys, in order.
func Keys(objs []uploader.ObjectInfo) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

// WantKeys fails the test unless prefix lists exactly want, in order.
func WantKeys(t *testing.T, r uploader.Replica, prefix string, want ...string) {
	t.Helper()
	got := Keys(List(t, r, prefix))
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("list %q = %q, want %q", prefix, got, want)
	}
}

// WantNotFound fails the test unless key is absent (uploader.ErrNotFound).
func WantNotFound(t *testing.T, r uploader.Replica, key string) {
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

// RandomBytes is deterministic pseudo-random data that does not compress,
// so nothing along the way can shortcut it.
func RandomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func testPutGetRoundTrip(t *testing.T, r uploader.Replica) {
	data := []byte("segment bytes \x00\x01\xff")
	before := time.Now().Add(-time.Minute)
	Put(t, r, "obj", data)
	if got := Get(t, r, "obj"); !bytes.Equal(got, data) {
		t.Fatalf("get = %q, want %q", got, data)
	}
	objs := List(t, r, "")
	if len(objs) != 1 || objs[0].Key != "obj" || objs[0].Size != int64(len(data)) {
		t.Fatalf("list = %+v", objs)
	}
	if m := objs[0].Modified; m.Before(before) || m.After(time.Now().Add(time.Minute)) {
		t.Fatalf("modified = %v, want about now", m)
	}
	// Unknown size is allowed.
	if err := r.Put(ctxT(t), "unsized", strings.NewReader("abc"), -1); err != nil {
		t.Fatalf("put with size -1: %v", err)
	}
	if got := Get(t, r, "unsized"); string(got) != "abc" {
		t.Fatalf("get unsized = %q", got)
	}
}

func testEmptyObject(t *testing.T, r uploader.Replica) {
	Put(t, r, "empty", nil)
	if got := Get(t, r, "empty"); len(got) != 0 {
		t.Fatalf("get empty = %q", got)
	}
	if objs := List(t, r, "empty"); len(objs) != 1 || objs[0].Size != 0 {
		t.Fatalf("list = %+v", objs)
	}
}

func testOverwriteSameBytes(t *testing.T, r uploader.Replica) {
	data := RandomBytes(100_000, 1)
	Put(t, r, "seg", data)
	Put(t, r, "seg", data)
	if got := Get(t, r, "seg"); !bytes.Equal(got, data) {
		t.Fatal("content changed after overwrite with the same bytes")
	}
	WantKeys(t, r, "", "seg")
}

func testGetMissing(t *testing.T, r uploader.Replica) {
	WantNotFound(t, r, "nothing/here")
	Put(t, r, "dir/obj", []byte("x"))
	WantNotFound(t, r, "dir") // a key prefix is not an object
	WantNotFound(t, r, "dir/ob")
	// Below an object, as if it were a directory.
	WantNotFound(t, r, "dir/obj/below")
	WantKeys(t, r, "dir/obj/below/")
	WantKeys(t, r, "dir/obj/x")
	if err := r.Delete(ctxT(t), "dir/obj/below"); err != nil {
		t.Fatalf("delete below an object: %v", err)
	}
	WantKeys(t, r, "", "dir/obj")
}

func testListPrefixSorted(t *testing.T, r uploader.Replica) {
	// No key is a path prefix of another ("b" and "b/a"): a directory
	// replica cannot hold both, and tailer's layout never needs it.
	all := []string{"a-b", "a/b", "a/c/d", "a/c/e", "ab", "b", "ba/x", "a0"}
	for _, i := range rand.Perm(len(all)) {
		Put(t, r, all[i], []byte(all[i]))
	}
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	WantKeys(t, r, "", sorted...)
	WantKeys(t, r, "a/", "a/b", "a/c/d", "a/c/e")
	WantKeys(t, r, "a", "a-b", "a/b", "a/c/d", "a/c/e", "a0", "ab")
	WantKeys(t, r, "a/c", "a/c/d", "a/c/e")
	WantKeys(t, r, "a/c/d", "a/c/d")
	WantKeys(t, r, "nope/")
	WantKeys(t, r, "a/x/y/")
	WantKeys(t, r, "../")
	for _, o := range List(t, r, "b") {
		if o.Size != int64(len(o.Key)) {
			t.Fatalf("%s: size %d, want %d", o.Key, o.Size, len(o.Key))
		}
	}
}

func testListMoreThan1000(t *testing.T, r uploader.Replica) {
	const n = 1001
	var wg sync.WaitGroup
	errs := make(chan error, n)
	idx := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				k := fmt.Sprintf("many/%05d", i)
				if err := r.Put(ctxT(t), k, strings.NewReader(k), int64(len(k))); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, i := range rand.Perm(n) {
		idx <- i
	}
	close(idx)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	Put(t, r, "other", []byte("x"))
	objs := List(t, r, "many/")
	if len(objs) != n {
		t.Fatalf("list returned %d objects, want %d", len(objs), n)
	}
	for i, o := range objs {
		if want := fmt.Sprintf("many/%05d", i); o.Key != want {
			t.Fatalf("objs[%d] = %s, want %s", i, o.Key, want)
		}
	}
	if got := len(List(t, r, "")); got != n+1 {
		t.Fatalf("list all = %d objects, want %d", got, n+1)
	}
	WantKeys(t, r, "many/01", "many/01000")
}

func testDeleteIdempotent(t *testing.T, r uploader.Replica) {
	Put(t, r, "d/x", []byte("x"))
	Put(t, r, "d/y", []byte("y"))
	ctx := ctxT(t)
	if err := r.Delete(ctx, "d/x"); err != nil {
		t.Fatal(err)
	}
	WantNotFound(t, r, "d/x")
	WantKeys(t, r, "", "d/y")
	if err := r.Delete(ctx, "d/x"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if err := r.Delete(ctx, "never/was"); err != nil {
		t.Fatalf("delete of a key that never existed: %v", err)
	}
}

// onlyReader hides every method but Read, forcing the streaming path.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func testLargeObject(t *testing.T, r uploader.Replica) {
	data := RandomBytes(largeSize, 2)
	want := sha256.Sum256(data)
	check := func(key string) {
		t.Helper()
		if got := sha256.Sum256(Get(t, r, key)); got != want {
			t.Fatalf("%s: content differs", key)
		}
		if objs := List(t, r, key); len(objs) != 1 || objs[0].Size != largeSize {
			t.Fatalf("list %s = %+v", key, objs)
		}
	}
	// From a file, as the Shipper does (random access).
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := r.Put(ctxT(t), "exports/big-file.texp", f, largeSize); err != nil {
		t.Fatal(err)
	}
	check("exports/big-file.texp")
	// From a plain stream, as `tailer export` to a pipe would.
	if err := r.Put(ctxT(t), "exports/big-stream.texp", onlyReader{bytes.NewReader(data)}, largeSize); err != nil {
		t.Fatal(err)
	}
	check("exports/big-stream.texp")
}

func testNestedKeys(t *testing.T, r uploader.Replica) {
	gen := "generations/20261122T213000Z-3f9a1c/"
	objs := map[string]string{
		gen + "generation.json":                                     `{"id":"20261122T213000Z-3f9a1c"}`,
		gen + "exports/00000000000000a0.texp":                       "export",
		gen + "segments/00000000000000a1-00000000000000b0.tseg":     "seg1",
		gen + "segments/00000000000000b1-00000000000000c0.tseg":     "seg2",
		"generations/20261123T000000Z-000000/segments/0-1.tseg":     "other gen",
		"generations/20261122T213000Z-3f9a1c-not-a-child/x/y/z/w/v": "deep",
	}
	for k, v := range objs {
		Put(t, r, k, []byte(v))
	}
	for k, v := range objs {
		if got := Get(t, r, k); string(got) != v {
			t.Fatalf("get %s = %q, want %q", k, got, v)
		}
	}
	WantKeys(t, r, gen+"segments/",
		gen+"segments/00000000000000a1-00000000000000b0.tseg",
		gen+"segments/00000000000000b1-00000000000000c0.tseg")
	WantKeys(t, r, gen,
		gen+"exports/00000000000000a0.texp",
		gen+"generation.json",
		gen+"segments/00000000000000a1-00000000000000b0.tseg",
		gen+"segments/00000000000000b1-00000000000000c0.tseg")
	if got := len(List(t, r, "generations/")); got != len(objs) {
		t.Fatalf("list generations/ = %d objects, want %d", got, len(objs))
	}
}

func testShortReader(t *testing.T, r uploader.Replica) {
	for _, n := range []int{10, largeSize / 4} {
		data := RandomBytes(n, 3)
		err := r.Put(ctxT(t), "short", onlyReader{bytes.NewReader(data)}, int64(n+1))
		if err == nil {
			t.Fatalf("put of %d bytes declared as %d: no error", n, n+1)
		}
		WantNotFound(t, r, "short")
	}
	WantKeys(t, r, "")
}

func testInvalidKeys(t *testing.T, r uploader.Replica) {
	for _, k := range []string{"", "/abs", "trailing/", "a//b", "../up", "a/../b", "./a", "a/.", `a\b`, "gen/.tmp-123", strings.Repeat("k", 1025)} {
		if err := r.Put(ctxT(t), k, strings.NewReader("x"), 1); err == nil {
			t.Errorf("put %q: no error", k)
		}
		if rc, err := r.Get(ctxT(t), k); err == nil {
			rc.Close()
			t.Errorf("get %q: no error", k)
		}
		if err := r.Delete(ctxT(t), k); err == nil {
			t.Errorf("delete %q: no error", k)
		}
		if _, err := r.ReadRange(ctxT(t), k, 0, 1); err == nil {
			t.Errorf("read range of %q: no error", k)
		}
		if _, _, err := r.GetVersioned(ctxT(t), k); err == nil {
			t.Errorf("get versioned %q: no error", k)
		}
		if _, err := r.PutIf(ctxT(t), k, []byte("x"), ""); err == nil {
			t.Errorf("put-if %q: no error", k)
		}
	}
	WantKeys(t, r, "")
}

func testContextCancelled(t *testing.T, r uploader.Replica) {
	Put(t, r, "present", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Put(ctx, "k", strings.NewReader("x"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("put with cancelled ctx: %v, want context.Canceled", err)
	}
	if rc, err := r.Get(ctx, "present"); !errors.Is(err, context.Canceled) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("get with cancelled ctx: %v, want context.Canceled", err)
	}
	if _, err := r.List(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("list with cancelled ctx: %v, want context.Canceled", err)
	}
	if err := r.Delete(ctx, "present"); !errors.Is(err, context.Canceled) {
		t.Errorf("delete with cancelled ctx: %v, want context.Canceled", err)
	}
	WantKeys(t, r, "", "present")
}

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

func testCancelMidUpload(t *testing.T, r uploader.Replica) {
	data := RandomBytes(largeSize/2, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &cancellingReader{r: bytes.NewReader(data), after: 1 << 20, cancel: cancel}
	if err := r.Put(ctx, "interrupted", onlyReader{src}, int64(len(data))); err == nil {
		t.Fatal("put succeeded although its context was cancelled mid-upload")
	}
	WantNotFound(t, r, "interrupted")
	WantKeys(t, r, "")
}

func testDownload(t *testing.T, r uploader.Replica) {
	data := RandomBytes(3<<20, 5)
	Put(t, r, "dl/obj", data)
	dir := t.TempDir()
	dst := filepath.Join(dir, "obj")
	n, err := uploader.Download(ctxT(t), r, "dl/obj", dst)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("download = %d, %v", n, err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("downloaded content differs")
	}
	if _, err := uploader.Download(ctxT(t), r, "dl/missing", filepath.Join(dir, "missing")); !errors.Is(err, uploader.ErrNotFound) {
		t.Fatalf("download missing: %v, want uploader.ErrNotFound", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("download left files behind: %v", ents)
	}
}

func testListAfter(t *testing.T, r uploader.Replica) {
	for _, k := range []string{"s/0001-0002", "s/0003-0009", "s/000a-000b", "t/1", "r/9"} {
		Put(t, r, k, []byte(k))
	}
	for _, c := range []struct {
		prefix, after string
		want          []string
	}{
		{"s/", "", []string{"s/0001-0002", "s/0003-0009", "s/000a-000b"}},
		{"s/", "s/0001-0002", []string{"s/0003-0009", "s/000a-000b"}},
		{"s/", "s/0003", []string{"s/0003-0009", "s/000a-000b"}}, // a key's own prefix sorts before it
		{"s/", "s/0004", []string{"s/000a-000b"}},
		{"s/", "s/000a-000b", []string{}},
		{"s/", "a", []string{"s/0001-0002", "s/0003-0009", "s/000a-000b"}},
		{"", "s/000a-000b", []string{"t/1"}},
		{"", "s0", []string{"t/1"}}, // past every key under s/
		{"nope/", "", []string{}},
	} {
		objs, err := r.ListAfter(ctxT(t), c.prefix, c.after)
		if err != nil {
			t.Fatalf("list %q after %q: %v", c.prefix, c.after, err)
		}
		if got := Keys(objs); !slices.Equal(got, c.want) {
			t.Fatalf("list %q after %q = %q, want %q", c.prefix, c.after, got, c.want)
		}
		for _, o := range objs {
			if o.Size != int64(len(o.Key)) {
				t.Fatalf("%s: size %d, want %d", o.Key, o.Size, len(o.Key))
			}
		}
	}
}
