package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/tailer-backup/tailer/uploader"
)

// testReadRange: exact bytes at any offset, one-byte and whole-object
// ranges, zero length, and every way a range can be wrong.
func testReadRange(t *testing.T, r uploader.Replica) {
	data := RandomBytes(100_000, 7)
	Put(t, r, "a/obj", data)
	Put(t, r, "a/empty", nil)
	size := int64(len(data))
	for _, c := range []struct{ off, n int64 }{
		{0, 1}, {0, 10}, {5, 3}, {size - 10, 10}, {size - 1, 1}, {0, size}, {65_530, 20}, {12_345, 54_321},
	} {
		got, err := r.ReadRange(ctxT(t), "a/obj", c.off, c.n)
		if err != nil {
			t.Fatalf("ReadRange(%d, %d): %v", c.off, c.n, err)
		}
		if !bytes.Equal(got, data[c.off:c.off+c.n]) {
			t.Fatalf("ReadRange(%d, %d): %d bytes differ from the object's", c.off, c.n, len(got))
		}
	}
	for _, c := range []struct {
		key string
		off int64
	}{{"a/obj", 0}, {"a/obj", 500}, {"a/obj", size}, {"a/empty", 0}} {
		if got, err := r.ReadRange(ctxT(t), c.key, c.off, 0); err != nil || len(got) != 0 {
			t.Fatalf("ReadRange(%s, %d, 0) = %d bytes, %v; want none, nil", c.key, c.off, len(got), err)
		}
	}
	for _, c := range []struct {
		name   string
		key    string
		off, n int64
	}{
		{"past the end", "a/obj", size - 5, 10},
		{"one byte past the end", "a/obj", 0, size + 1},
		{"starting at the end", "a/obj", size, 1},
		{"starting beyond the end", "a/obj", size + 100, 10},
		{"of an empty object", "a/empty", 0, 1},
	} {
		got, err := r.ReadRange(ctxT(t), c.key, c.off, c.n)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("ReadRange(%s, %d, %d) %s = %d bytes, %v; want io.ErrUnexpectedEOF", c.key, c.off, c.n, c.name, len(got), err)
		}
	}
	for _, c := range []struct{ off, n int64 }{{-1, 1}, {0, -1}} {
		if _, err := r.ReadRange(ctxT(t), "a/obj", c.off, c.n); err == nil {
			t.Fatalf("ReadRange(%d, %d): no error for a negative range", c.off, c.n)
		}
	}
	if _, err := r.ReadRange(ctxT(t), "a/none", 0, 1); !errors.Is(err, uploader.ErrNotFound) {
		t.Fatalf("ReadRange of a missing object: %v, want ErrNotFound", err)
	}
	buf := make([]byte, 4)
	if n, err := (uploader.ObjectReaderAt{Ctx: ctxT(t), Replica: r, Key: "a/obj"}).ReadAt(buf, 12); err != nil || n != 4 || !bytes.Equal(buf, data[12:16]) {
		t.Fatalf("ObjectReaderAt.ReadAt = %d, %v", n, err)
	}
}

// testReadRangeLarge reads across part (and, encrypted, chunk) boundaries
// of an object uploaded in several parts.
func testReadRangeLarge(t *testing.T, r uploader.Replica) {
	data := RandomBytes(largeSize, 8)
	Put(t, r, "big", data)
	for _, c := range []struct{ off, n int64 }{{0, 8}, {largeSize - 8, 8}, {16<<20 - 3, 6}, {5 << 20, 3 << 20}} {
		got, err := r.ReadRange(ctxT(t), "big", c.off, c.n)
		if err != nil || !bytes.Equal(got, data[c.off:c.off+c.n]) {
			t.Fatalf("ReadRange(%d, %d): %d bytes, %v", c.off, c.n, len(got), err)
		}
	}
}

func getVersioned(t *testing.T, r uploader.Replica, key string) ([]byte, string) {
	t.Helper()
	b, v, err := r.GetVersioned(ctxT(t), key)
	if err != nil {
		t.Fatalf("get versioned %s: %v", key, err)
	}
	return b, v
}

// testCreateIfAbsent: PutIf with "" creates once; a second create loses
// with ErrPreconditionFailed and leaves the first one's bytes.
func testCreateIfAbsent(t *testing.T, r uploader.Replica) {
	if _, _, err := r.GetVersioned(ctxT(t), "lease.json"); !errors.Is(err, uploader.ErrNotFound) {
		t.Fatalf("get versioned of a missing object: %v, want ErrNotFound", err)
	}
	v1, err := r.PutIf(ctxT(t), "lease.json", []byte("first"), "")
	if err != nil || v1 == "" {
		t.Fatalf("create: version %q, %v", v1, err)
	}
	if _, err := r.PutIf(ctxT(t), "lease.json", []byte("second"), ""); !errors.Is(err, uploader.ErrPreconditionFailed) {
		t.Fatalf("second create: %v, want ErrPreconditionFailed", err)
	}
	b, v := getVersioned(t, r, "lease.json")
	if string(b) != "first" || v != v1 {
		t.Fatalf("after a lost create: %q version %q, want %q version %q", b, v, "first", v1)
	}
	if got := Get(t, r, "lease.json"); string(got) != "first" {
		t.Fatalf("Get after PutIf = %q", got)
	}
	WantKeys(t, r, "", "lease.json")
}

// testReplaceIfUnchanged: a replace with the current version wins and
// yields a new one; with a stale version, or after the object is gone,
// it loses and changes nothing.
func testReplaceIfUnchanged(t *testing.T, r uploader.Replica) {
	v1, err := r.PutIf(ctxT(t), "l/lease.json", []byte("one"), "")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := r.PutIf(ctxT(t), "l/lease.json", []byte("two"), v1)
	if err != nil || v2 == "" || v2 == v1 {
		t.Fatalf("replace with the current version: %q (was %q), %v", v2, v1, err)
	}
	if _, err := r.PutIf(ctxT(t), "l/lease.json", []byte("stale"), v1); !errors.Is(err, uploader.ErrPreconditionFailed) {
		t.Fatalf("replace with a stale version: %v, want ErrPreconditionFailed", err)
	}
	if b, v := getVersioned(t, r, "l/lease.json"); string(b) != "two" || v != v2 {
		t.Fatalf("after a stale replace: %q version %q, want %q version %q", b, v, "two", v2)
	}
	// The same bytes written again still get a version the next
	// replace accepts.
	v3, err := r.PutIf(ctxT(t), "l/lease.json", []byte("two"), v2)
	if err != nil {
		t.Fatalf("replace with the same bytes: %v", err)
	}
	if _, err := r.PutIf(ctxT(t), "l/lease.json", []byte("three"), v3); err != nil {
		t.Fatalf("replace after a same-bytes replace: %v", err)
	}
	if err := r.Delete(ctxT(t), "l/lease.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutIf(ctxT(t), "l/lease.json", []byte("gone"), v3); !errors.Is(err, uploader.ErrPreconditionFailed) {
		t.Fatalf("replace of a deleted object: %v, want ErrPreconditionFailed", err)
	}
	WantNotFound(t, r, "l/lease.json")
}

// testConcurrentConditional: writers racing with the same expected
// version (absent, then one version) — exactly one wins each round, the
// others lose with ErrPreconditionFailed, and the object holds the
// winner's bytes.
func testConcurrentConditional(t *testing.T, r uploader.Replica) {
	const writers = 8
	race := func(ifVersion string) (winner int, version string) {
		t.Helper()
		var wg sync.WaitGroup
		start := make(chan struct{})
		versions := make([]string, writers)
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				<-start
				versions[i], errs[i] = r.PutIf(ctxT(t), "race/lease.json", fmt.Appendf(nil, "writer %d after %q", i, ifVersion), ifVersion)
			})
		}
		close(start)
		wg.Wait()
		winner = -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("writers %d and %d both won a PutIf against version %q", winner, i, ifVersion)
			case err == nil:
				winner = i
			case !errors.Is(err, uploader.ErrPreconditionFailed):
				t.Fatalf("writer %d: %v, want a win or ErrPreconditionFailed", i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("no writer won a PutIf against version %q", ifVersion)
		}
		b, v := getVersioned(t, r, "race/lease.json")
		if want := fmt.Sprintf("writer %d after %q", winner, ifVersion); string(b) != want || v != versions[winner] {
			t.Fatalf("object holds %q version %q, want the winner's %q version %q", b, v, want, versions[winner])
		}
		return winner, versions[winner]
	}
	_, v := race("")
	race(v)
}

// testConcurrentWriters: many goroutines putting and reading different
// keys at once, as the shipper's parallel blob uploads do, each see
// their own object whole, and a listing sees all of them.
func testConcurrentWriters(t *testing.T, r uploader.Replica) {
	const writers = 16
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			key := fmt.Sprintf("c/%02d", i)
			data := RandomBytes(64<<10+i, uint64(100+i))
			if err := r.Put(ctxT(t), key, bytes.NewReader(data), int64(len(data))); err != nil {
				errs[i] = err
				return
			}
			got, err := r.ReadRange(ctxT(t), key, 0, int64(len(data)))
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("read back %d bytes that differ", len(got))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	var want []string
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		want = append(want, fmt.Sprintf("c/%02d", i))
	}
	WantKeys(t, r, "c/", want...)
	for i, o := range List(t, r, "c/") {
		if o.Size != int64(64<<10+i) {
			t.Fatalf("%s: listed size %d, want %d", o.Key, o.Size, 64<<10+i)
		}
	}
}
