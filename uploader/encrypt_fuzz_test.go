package uploader

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// hostileReplica holds one object and states whatever size it is told to
// in List, as a hostile or broken S3 server may. It refuses (without
// allocating) a ranged read past the bytes it really has, and records the
// longest range asked for.
type hostileReplica struct {
	key    string
	data   []byte
	stated int64

	mu      sync.Mutex
	longest int64
	bad     error // a range no caller may ask for: the backends allocate n first
}

func (h *hostileReplica) String() string   { return "mem://hostile" }
func (h *hostileReplica) Identity() string { return h.String() }
func (h *hostileReplica) ListAfter(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	return nil, fmt.Errorf("hostile: ListAfter not used")
}
func (h *hostileReplica) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return fmt.Errorf("read-only")
}
func (h *hostileReplica) Delete(ctx context.Context, key string) error { return nil }
func (h *hostileReplica) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if key != h.key {
		return nil, ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(h.data)), nil
}
func (h *hostileReplica) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	return []ObjectInfo{{Key: h.key, Size: h.stated}}, nil
}
func (h *hostileReplica) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	h.mu.Lock()
	h.longest = max(h.longest, n)
	if off < 0 || n <= 0 {
		h.bad = fmt.Errorf("asked for %d bytes at %d", n, off)
	}
	h.mu.Unlock()
	if key != h.key {
		return nil, ErrNotFound
	}
	if off < 0 || n < 0 || off > int64(len(h.data)) || n > int64(len(h.data))-off {
		return nil, fmt.Errorf("read %d bytes at %d of %d: %w", n, off, len(h.data), io.ErrUnexpectedEOF)
	}
	return bytes.Clone(h.data[off : off+n]), nil
}
func (h *hostileReplica) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	if key != h.key {
		return nil, "", ErrNotFound
	}
	return bytes.Clone(h.data), "v", nil
}
func (h *hostileReplica) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	return "", fmt.Errorf("read-only")
}

// FuzzEncryptedReader feeds the encrypted-object reader hostile objects:
// any header (magic, key id, chunk size), any body, and any size stated
// by List, read whole, in place at any range, and as a conditional read.
// Each must end in data or an error, never a panic; what comes out is
// never longer than what went in; and no ranged read asks the replica
// for more than the chunks covering the requested range (memory follows
// the caller's request, not what the object or the listing claims).
func FuzzEncryptedReader(f *testing.F) {
	for _, v := range loadVectors(f) {
		if v.KeysJSON != "" {
			continue // the fuzzer holds raw keys: Argon2id per input would crawl
		}
		b, err := os.ReadFile(filepath.Join(vectorDir, v.File))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, v.Object, int64(len(b)), int64(0), int64(len(v.plaintext())))
		f.Add(b, v.Object, int64(len(b)), int64(len(v.plaintext())/2), int64(3))
		f.Add(b, v.Object, int64(1)<<62, int64(1)<<61, int64(1)<<20)
		big := bytes.Clone(b)
		binary.BigEndian.PutUint32(big[16:20], 0xffffffff) // a huge chunk size
		f.Add(big, v.Object, int64(len(b)), int64(0), int64(1))
		f.Add(b[:len(b)/2], v.Object, int64(len(b)), int64(10), int64(1)<<40)
		f.Add(b, v.Object, int64(len(b)), int64(math.MaxInt64-5), int64(10)) // off+n overflows
	}
	f.Add([]byte("TAILENC2"), "x", int64(-1), int64(-5), int64(-1))
	f.Add([]byte{}, "", int64(0), int64(0), int64(0))
	f.Add([]byte("TAILSEG1 plaintext"), "x", int64(math.MaxInt64), int64(math.MaxInt64-1), int64(math.MaxInt64))

	v1, v2 := testVectorKeys(f)
	f.Fuzz(func(t *testing.T, data []byte, name string, stated, off, n int64) {
		ctx := context.Background()
		h := &hostileReplica{key: name, data: data, stated: stated}
		open := func() *encrypted {
			e, err := newEncrypted(h, []Key{v2, v1}, rand.Reader, cheapKDF)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		if rc, err := open().Get(ctx, name); err == nil {
			out, err := io.ReadAll(rc)
			rc.Close()
			if len(out) > len(data) {
				t.Fatalf("Get gave %d bytes out of %d (err %v)", len(out), len(data), err)
			}
		}
		if out, _, err := open().GetVersioned(ctx, name); err == nil && len(out) > len(data) {
			t.Fatalf("getVersioned gave %d bytes out of %d", len(out), len(data))
		}
		if _, err := open().List(ctx, ""); err != nil {
			t.Fatal(err)
		}
		e := open()
		for range 2 { // the second read goes through the cached size and header
			out, err := e.ReadRange(ctx, name, off, n)
			if err == nil && (int64(len(out)) != n || n > int64(len(data))) {
				t.Fatalf("ReadRange(%d, %d) gave %d bytes of an object of %d", off, n, len(out), len(data))
			}
		}
		if h.bad != nil {
			t.Fatalf("ReadRange(%d, %d): the replica was %v", off, n, h.bad)
		}
		if bound := (n/encChunk+2)*(encChunk+encTag) + encHeaderLen; n >= 0 && n < 1<<40 && h.longest > bound {
			t.Fatalf("ReadRange(%d, %d) asked the replica for %d bytes, more than the %d of the chunks covering it", off, n, h.longest, bound)
		}
		if rc, err := Unencrypted(h).Get(ctx, name); err == nil {
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	})
}

// testVectorKeys are the raw keys of the version 1 and 2 vectors.
func testVectorKeys(t testing.TB) (v1, v2 Key) {
	for _, v := range loadVectors(t) {
		if v.KeysJSON != "" {
			continue
		}
		k, err := ParseKey([]byte(v.Key))
		if err != nil {
			t.Fatal(err)
		}
		if v.Version == 1 {
			v1 = k
		} else {
			v2 = k
		}
	}
	return v1, v2
}

// FuzzKeysFile: keys.json, which whoever can write to the bucket can
// replace, is parsed without a panic, and whatever is accepted stays
// within the policy's floor and ceiling (bounded Argon2id memory and time).
func FuzzKeysFile(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(vectorDir, "keys.json")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"format":"tailer-keys 1","kdf":"argon2id","salt":"AAAAAAAAAAAAAAAAAAAAAA==","time":4294967295,"memory_kib":4294967295,"threads":255}`))
	f.Add([]byte(`{"format":"tailer-keys 1","kdf":"argon2id","salt":null,"time":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := parseKeysFile(b, defaultKDF)
		if err != nil {
			return
		}
		p, lo, hi := kf.kdfParams, defaultKDF.min, defaultKDF.max
		if p.Time < lo.Time || p.Time > hi.Time || p.MemoryKiB < lo.MemoryKiB || p.MemoryKiB > hi.MemoryKiB || p.Threads < lo.Threads || p.Threads > hi.Threads || len(kf.Salt) < 16 {
			t.Fatalf("accepted %+v", p)
		}
	})
}
