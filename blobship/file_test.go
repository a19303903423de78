package blobship

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/blobfs"
)

// TestFileWriteObject encodes blob files below and above StreamThreshold,
// compressible or not, and checks that the objects decode to the files'
// bytes, byte for byte.
func TestFileWriteObject(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	// Mail-like text: words drawn at random from a small vocabulary, which
	// zstd shrinks severalfold (a repeated phrase would exceed the
	// expansion ratio a blob object may have, and be stored as is).
	words := strings.Fields("Subject: hi the mail server backup of every message and its body text to a bucket with zstd")
	text := func(n int) []byte {
		var b []byte
		for len(b) < n {
			b = append(append(b, words[rng.IntN(len(words))]...), ' ')
		}
		return b[:n]
	}
	// Random 64-byte runs, each twice: LZ4 halves it, zstd cannot
	// shrink what LZ4 leaves.
	halving := func(n int) []byte {
		var b []byte
		for len(b) < n {
			run := random(64)
			b = append(append(b, run...), run...)
		}
		return b[:n]
	}
	tests := []struct {
		name     string
		payload  []byte
		lz4      bool
		wantZstd bool
	}{
		{"small text, raw", text(40 << 10), false, true},
		{"small random", random(40 << 10), false, false},
		{"large text, raw (streamed)", text(StreamThreshold + 12345), false, true},
		{"large random (streamed)", random(StreamThreshold + 777), false, false},
		{"large, LZ4 (streamed)", halving(3 * StreamThreshold), true, false},
	}
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := blobfs.Encode(tc.payload, tc.lz4)
			h := blobfs.Sum(tc.payload)
			path := filepath.Join(dir, h.Name())
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := OpenFile(path, h)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Result.Status != blobfs.Complete {
				t.Fatalf("verify: %+v", f.Result)
			}
			if streamed := f.data == nil; streamed != (len(data) > StreamThreshold) {
				t.Fatalf("streamed = %v for %d bytes", streamed, len(data))
			}
			var obj bytes.Buffer
			if err := f.WriteObject(enc, &obj); err != nil {
				t.Fatal(err)
			}
			if zstd := obj.Bytes()[5] == encZstd; zstd != tc.wantZstd {
				t.Errorf("zstd body = %v, want %v (%d bytes for %d)", zstd, tc.wantZstd, obj.Len(), len(data))
			}
			back, err := Decode("x", obj.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, data) {
				t.Fatal("the object does not hold the file's bytes")
			}
		})
	}
}

// TestOpenFileWrongName: a file that does not hash to its name is opened
// but reported incomplete; a missing file is os.ErrNotExist.
func TestOpenFileWrongName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	big := bytes.Repeat([]byte{1}, StreamThreshold+1)
	for _, data := range [][]byte{blobfs.Encode([]byte("x"), false), blobfs.Encode(big, false)} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := OpenFile(path, blobfs.Sum([]byte("y")))
		if err != nil {
			t.Fatal(err)
		}
		if f.Result.Status != blobfs.Incomplete {
			t.Fatalf("%d bytes under another name: %+v", len(data), f.Result)
		}
		f.Close()
	}
	if _, err := OpenFile(filepath.Join(dir, "gone"), blobfs.Hash{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// flipping reads one content the first time and another after a seek
// back: a file that changes between EncodeFile's passes.
type flipping struct {
	a, b  []byte
	reads int
	r     *bytes.Reader
}

func (f *flipping) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *flipping) Seek(off int64, whence int) (int64, error) {
	f.reads++
	if f.reads > 1 {
		f.r = bytes.NewReader(f.b)
	} else {
		f.r = bytes.NewReader(f.a)
	}
	return f.r.Seek(off, whence)
}

func TestEncodeFileChanged(t *testing.T) {
	enc, _ := NewEncoder()
	a := bytes.Repeat([]byte("abc"), 1000)
	tests := []struct {
		name string
		b    []byte
	}{
		{"same length, other bytes", bytes.Repeat([]byte("abd"), 1000)},
		{"grown", append(bytes.Clone(a), 'x')},
		{"shrunk", a[:len(a)-1]},
	}
	for _, tc := range tests {
		err := enc.EncodeFile(io.Discard, &flipping{a: a, b: tc.b})
		if !errors.Is(err, ErrChanged) {
			t.Errorf("%s: %v, want ErrChanged", tc.name, err)
		}
	}
	if err := enc.EncodeFile(io.Discard, &flipping{a: a, b: a}); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
}
