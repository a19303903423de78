package uploader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/miniotest"
)

func testKey(seed byte) []byte {
	k := make([]byte, KeyLen)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

func mustEncrypted(t *testing.T, r Replica, key []byte) Replica {
	t.Helper()
	k, err := RawKey(key)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Encrypted(r, k)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPlainSizeInvertsCipherSize(t *testing.T) {
	for p := int64(0); p < 4*encChunk+100; p += 7 {
		if got, ok := plainSize(cipherSize(p)); !ok || got != p {
			t.Fatalf("plainSize(cipherSize(%d)) = %d, %v", p, got, ok)
		}
	}
	for _, p := range []int64{encChunk - 1, encChunk, encChunk + 1, 3 * encChunk} {
		if got, ok := plainSize(cipherSize(p)); !ok || got != p {
			t.Fatalf("plainSize(cipherSize(%d)) = %d, %v", p, got, ok)
		}
	}
	// Sizes no plaintext encrypts to: shorter than a header and a tag, or
	// a last chunk with no room for its tag.
	for _, c := range []int64{0, encHeaderLen, encHeaderLen + encTag - 1, encHeaderLen + encChunk + encTag + 5, encHeaderLen + encChunk + 2*encTag} {
		if _, ok := plainSize(c); ok {
			t.Errorf("plainSize(%d) accepted", c)
		}
	}
}

var boundarySizes = []int{0, 1, encChunk - 1, encChunk, encChunk + 1, 3 * encChunk, 3*encChunk + 17}

// TestEncryptedRoundTrip: objects of sizes around chunk boundaries come
// back whole, through Get and through ranged reads across chunks; List
// reports plaintext sizes; what is stored has the documented size and
// does not contain the plaintext.
func TestEncryptedRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := newTestFileReplica(t)
	r := mustEncrypted(t, raw, testKey(1))
	for _, size := range boundarySizes {
		key := fmt.Sprintf("gen/obj-%d", size)
		data := randomBytes(size, uint64(size))
		// A streamed source of unknown size too.
		put(t, r, key, data)
		if err := r.Put(ctx, key+"-unsized", onlyReader{bytes.NewReader(data)}, -1); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{key, key + "-unsized"} {
			if got := get(t, r, k); !bytes.Equal(got, data) {
				t.Fatalf("%s: round trip differs (%d bytes back)", k, len(got))
			}
			objs := list(t, r, k)
			if len(objs) == 0 || objs[0].Key != k || objs[0].Size != int64(size) {
				t.Fatalf("list %s = %+v, want size %d", k, objs, size)
			}
			stored := get(t, raw, k)
			if int64(len(stored)) != cipherSize(int64(size)) {
				t.Fatalf("%s: stored %d bytes, want %d", k, len(stored), cipherSize(int64(size)))
			}
			if !bytes.HasPrefix(stored, []byte(encMagic)) {
				t.Fatalf("%s: stored object does not start with the magic", k)
			}
			if size >= 32 && bytes.Contains(stored, data[:32]) {
				t.Fatalf("%s: the stored object contains plaintext", k)
			}
		}
		// Ranges: at the edges, across one and two chunk boundaries, the
		// whole object; through a fresh wrapper too (no cached size or
		// header: the size comes from a LIST of the key).
		type rng struct{ off, n int64 }
		rs := []rng{{0, int64(size)}}
		for _, b := range []int64{0, encChunk, 2 * encChunk, 3 * encChunk} {
			for _, c := range []rng{{b - 1, 2}, {b - 10, 20}, {b, 1}, {b - 1, 1}, {b - 5, encChunk + 10}} {
				if c.off >= 0 && c.n > 0 && c.off+c.n <= int64(size) {
					rs = append(rs, c)
				}
			}
		}
		if size > 0 {
			rs = append(rs, rng{int64(size) - 1, 1}, rng{int64(size) / 2, int64(size) - int64(size)/2})
		}
		fresh := mustEncrypted(t, raw, testKey(1))
		for _, rr := range []Replica{r, fresh} {
			for _, c := range rs {
				got, err := rr.ReadRange(ctx, key, c.off, c.n)
				if err != nil {
					t.Fatalf("%s: ReadRange(%d, %d): %v", key, c.off, c.n, err)
				}
				if !bytes.Equal(got, data[c.off:c.off+c.n]) {
					t.Fatalf("%s: ReadRange(%d, %d) differs", key, c.off, c.n)
				}
			}
			if _, err := rr.ReadRange(ctx, key, int64(size), 1); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s: read past the end: %v, want io.ErrUnexpectedEOF", key, err)
			}
		}
		buf := make([]byte, 3)
		if size >= encChunk+2 {
			if n, err := (ObjectReaderAt{ctx, fresh, key}).ReadAt(buf, encChunk-1); err != nil || n != 3 || !bytes.Equal(buf, data[encChunk-1:encChunk+2]) {
				t.Fatalf("ObjectReaderAt across a chunk boundary: %d %v", n, err)
			}
		}
	}
	if _, err := r.ReadRange(ctx, "gen/none", 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ranged read of a missing object: %v, want ErrNotFound", err)
	}
}

// TestEncryptedReuploadWithCachedHeader: an object uploaded again (new
// salt, same bytes) by another process is still read in place by a
// wrapper that cached the old header.
func TestEncryptedReuploadWithCachedHeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := newTestFileReplica(t)
	a, b := mustEncrypted(t, raw, testKey(1)), mustEncrypted(t, raw, testKey(1))
	data := randomBytes(3*encChunk, 9)
	put(t, a, "seg", data)
	if _, err := a.ReadRange(ctx, "seg", 2*encChunk, 10); err != nil {
		t.Fatal(err)
	}
	put(t, b, "seg", data)
	got, err := a.ReadRange(ctx, "seg", 2*encChunk+5, 10)
	if err != nil || !bytes.Equal(got, data[2*encChunk+5:2*encChunk+15]) {
		t.Fatalf("read after another process re-uploaded: %v", err)
	}
}

func TestEncryptedWrongAndMissingKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := newTestFileReplica(t)
	r := mustEncrypted(t, raw, testKey(1))
	data := []byte(`{"id":"20261122T213000Z-3f9a1c"}`)
	put(t, r, "generations/g/generation.json", data)

	other := mustEncrypted(t, raw, testKey(2))
	_, err := other.Get(ctx, "generations/g/generation.json")
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "was encrypted with another key (key id ") ||
		!strings.Contains(err.Error(), "check the encryption key") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := other.ReadRange(ctx, "generations/g/generation.json", 5, 3); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key, ranged: %v", err)
	}

	plain := Unencrypted(raw)
	_, err = plain.Get(ctx, "generations/g/generation.json")
	if !errors.Is(err, ErrEncrypted) || !strings.Contains(err.Error(), "give its key with the encryption key") || !strings.Contains(err.Error(), "is encrypted") {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := plain.ReadRange(ctx, "generations/g/generation.json", 0, 16); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("missing key, ranged: %v", err)
	}
	// Without a key, plaintext passes through untouched.
	put(t, plain, "p", []byte("plain text"))
	if got := get(t, plain, "p"); string(got) != "plain text" {
		t.Fatalf("plaintext through Unencrypted = %q", got)
	}
	if got := get(t, plain, "generations/g/generation.json"[:0]+"p"); string(got) != "plain text" {
		t.Fatal("second read differs")
	}
	// A key given for a plaintext replica.
	if _, err := r.Get(ctx, "p"); !errors.Is(err, ErrNotEncrypted) || !strings.Contains(err.Error(), "is not encrypted") {
		t.Fatalf("plaintext object read with a key: %v", err)
	}
	if _, err := r.ReadRange(ctx, "p", 0, 4); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("plaintext object read in place with a key: %v", err)
	}
}

// TestEncryptedTampering: a flipped byte in any chunk, a truncation (in a
// chunk or at a chunk boundary), appended bytes and a changed header are
// all reported as tampering, naming the chunk; nothing unauthenticated is
// handed out.
func TestEncryptedTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	raw, err := Open(ctx, "file://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := mustEncrypted(t, raw, testKey(1))
	data := randomBytes(3*encChunk+100, 7)
	put(t, r, "seg", data)
	pristine, err := os.ReadFile(filepath.Join(dir, "seg"))
	if err != nil {
		t.Fatal(err)
	}
	// damaged stores data under key (the key is authenticated too), then
	// damages what was stored.
	damaged := func(key string, damage func([]byte) []byte) {
		t.Helper()
		put(t, r, key, data)
		p := filepath.Join(dir, filepath.FromSlash(key))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, damage(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chunkOff := func(i int) int { return encHeaderLen + i*(encChunk+encTag) }
	cases := []struct {
		name   string
		damage func(b []byte) []byte
		chunk  int
	}{
		{"flip in chunk 0", func(b []byte) []byte { b[chunkOff(0)+5] ^= 1; return b }, 0},
		{"flip in chunk 2", func(b []byte) []byte { b[chunkOff(2)+100] ^= 0x80; return b }, 2},
		{"flip in the last tag", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, 3},
		{"flip in the salt", func(b []byte) []byte { b[30] ^= 1; return b }, 0},
		{"truncated at a chunk boundary", func(b []byte) []byte { return b[:chunkOff(3)] }, 2},
		{"truncated inside a chunk", func(b []byte) []byte { return b[:chunkOff(2)+1000] }, 2},
		{"bytes appended", func(b []byte) []byte { return append(b, 0) }, 3},
		{"chunks swapped", func(b []byte) []byte {
			c := bytes.Clone(b[chunkOff(0):chunkOff(1)])
			copy(b[chunkOff(0):], b[chunkOff(1):chunkOff(2)])
			copy(b[chunkOff(1):], c)
			return b
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "t/" + strings.ReplaceAll(c.name, " ", "-")
			damaged(key, c.damage)
			rc, err := r.Get(ctx, key)
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			want := fmt.Sprintf("object %s is corrupt or was tampered with at chunk %d", key, c.chunk)
			if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Get: %v, want %q", err, want)
			}
			// A ranged read of the damaged chunk fails too (through a
			// fresh wrapper: the stored size comes from the replica).
			off := int64(c.chunk)*encChunk + 3
			if _, err := mustEncrypted(t, raw, testKey(1)).ReadRange(ctx, key, off, 10); !errors.Is(err, ErrTampered) {
				t.Fatalf("ReadRange(%d, 10): %v, want ErrTampered", off, err)
			}
		})
	}
	// An object copied under another name does not authenticate either.
	if err := os.WriteFile(filepath.Join(dir, "moved"), pristine, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(must(r.Get(ctx, "moved"))); !errors.Is(err, ErrTampered) {
		t.Fatalf("renamed object: %v, want ErrTampered", err)
	}
	if got := get(t, r, "seg"); !bytes.Equal(got, data) {
		t.Fatal("pristine object no longer reads")
	}
}

func must(rc io.ReadCloser, err error) io.Reader {
	if err != nil {
		return iotestErrReader{err}
	}
	return rc
}

type iotestErrReader struct{ err error }

func (e iotestErrReader) Read([]byte) (int, error) { return 0, e.err }

// TestEncryptedConditional: the lease's conditional writes work through
// the wrapper (file and MinIO), and the stored lease is ciphertext.
func TestEncryptedConditional(t *testing.T) {
	t.Parallel()
	backends := map[string]func(t *testing.T) Replica{
		"file": newTestFileReplica,
		"minio": func(t *testing.T) Replica {
			srv := miniotest.Start(t)
			srv.CreateBucket("lease")
			return openS3(t, srv, srv.URL("lease", "p"), Options{})
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			raw := open(t)
			r := mustEncrypted(t, raw, testKey(1))
			v1, err := r.PutIf(ctx, "lease.json", []byte(`{"holder":"host-a"}`), "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.PutIf(ctx, "lease.json", []byte(`{"holder":"host-b"}`), ""); !errors.Is(err, ErrPreconditionFailed) {
				t.Fatalf("create over an existing lease: %v, want ErrPreconditionFailed", err)
			}
			got, v, err := r.GetVersioned(ctx, "lease.json")
			if err != nil || string(got) != `{"holder":"host-a"}` || v != v1 {
				t.Fatalf("GetVersioned = %q %q %v (want version %q)", got, v, err, v1)
			}
			v2, err := r.PutIf(ctx, "lease.json", []byte(`{"holder":"host-a","renewed":1}`), v1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.PutIf(ctx, "lease.json", []byte(`{"holder":"host-b"}`), v1); !errors.Is(err, ErrPreconditionFailed) {
				t.Fatalf("write with a stale version: %v, want ErrPreconditionFailed", err)
			}
			if got, v, err := r.GetVersioned(ctx, "lease.json"); err != nil || v != v2 || !strings.Contains(string(got), "renewed") {
				t.Fatalf("GetVersioned after renew = %q %q %v", got, v, err)
			}
			stored, _, err := raw.GetVersioned(ctx, "lease.json")
			if err != nil || !bytes.HasPrefix(stored, []byte(encMagic)) || bytes.Contains(stored, []byte("holder")) {
				t.Fatalf("stored lease is not ciphertext: %q %v", stored, err)
			}
			if _, _, err := mustEncrypted(t, raw, testKey(2)).GetVersioned(ctx, "lease.json"); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("lease with the wrong key: %v", err)
			}
			if _, _, err := Unencrypted(raw).GetVersioned(ctx, "lease.json"); !errors.Is(err, ErrEncrypted) {
				t.Fatalf("lease without a key: %v", err)
			}
		})
	}
}
