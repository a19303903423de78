package blobship

import (
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/tailer-backup/tailer/blobfs"
)

func TestManifestRoundTrip(t *testing.T) {
	a, b, c := blobfs.Sum([]byte("a")), blobfs.Sum([]byte("b")), blobfs.Sum([]byte("c"))
	for _, tc := range []struct {
		name string
		in   []blobfs.Hash
		want int
	}{
		{"empty", nil, 0},
		{"one", []blobfs.Hash{a}, 1},
		{"unsorted with duplicates", []blobfs.Hash{c, a, b, a, c}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := EncodeManifest(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) != 45+32*tc.want {
				t.Fatalf("%d bytes for %d hashes", len(data), tc.want)
			}
			got, err := DecodeManifest(data)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(tc.in)
			slices.SortFunc(want, func(x, y blobfs.Hash) int { return slices.Compare(x[:], y[:]) })
			want = slices.Compact(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestManifestRefusesDamage(t *testing.T) {
	good, err := EncodeManifest([]blobfs.Hash{blobfs.Sum([]byte("a")), blobfs.Sum([]byte("b"))})
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func([]byte) []byte) []byte { return f(slices.Clone(good)) }
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"version", mod(func(b []byte) []byte { b[4] = 2; return b })},
		{"truncated", good[:len(good)-1]},
		{"flipped hash bit", mod(func(b []byte) []byte { b[20] ^= 1; return b })},
		{"huge stated count", mod(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[5:], 1<<62); return b })},
		{"count larger than body", mod(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[5:], 3); return b })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeManifest(tc.data); !errors.Is(err, ErrManifest) {
				t.Fatalf("err = %v, want ErrManifest", err)
			}
		})
	}
}

// TestDecodeBoundsMemory: a blob object's header is untrusted; a 30-byte
// object announcing a 1 GiB zstd body must be refused without
// allocating it.
func TestDecodeBoundsMemory(t *testing.T) {
	obj := append([]byte("TBLB\x01\x01"), make([]byte, 16)...)
	binary.LittleEndian.PutUint64(obj[6:], MaxBlobSize)
	obj = append(obj, 0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0) // a zstd magic, nothing behind it
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Decode("blobs/x", obj)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("Decode = %v, want ErrFormat", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Fatalf("Decode of a %d-byte object allocated %d MiB", len(obj), got>>20)
	}
	// What the encoder writes still decodes, also far above the ratio
	// (stored, not compressed).
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range [][]byte{make([]byte, 8<<20), []byte("Subject: hi\r\n\r\nhello hello hello hello hello\x00")} {
		got, err := Decode("blobs/y", enc.Encode(file))
		if err != nil || len(got) != len(file) {
			t.Fatalf("round trip of %d bytes: %d, %v", len(file), len(got), err)
		}
	}
}

// FuzzDecode: any bytes are refused or decoded within a memory bound,
// never a panic.
func FuzzDecode(f *testing.F) {
	enc, err := NewEncoder()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc.Encode([]byte("Subject: hi\r\n\r\nbody body body body body body body\x00")))
	f.Add(enc.Encode(make([]byte, 4096)))
	huge := append([]byte("TBLB\x01\x01"), make([]byte, 16)...)
	binary.LittleEndian.PutUint64(huge[6:], MaxBlobSize)
	f.Add(huge)
	f.Fuzz(func(t *testing.T, obj []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		file, err := Decode("blobs/f", obj)
		runtime.ReadMemStats(&after)
		if err == nil && len(file) > maxZstdRatio*len(obj)+ratioSlack {
			t.Fatalf("%d bytes from a %d-byte object", len(file), len(obj))
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20+uint64(1024*len(obj)) {
			t.Fatalf("Decode of %d bytes allocated %d MiB", len(obj), got>>20)
		}
	})
}

// FuzzDecodeManifest: a manifest is refused or read whole, never more
// hashes than its bytes hold.
func FuzzDecodeManifest(f *testing.F) {
	good, err := EncodeManifest([]blobfs.Hash{blobfs.Sum([]byte("a")), blobfs.Sum([]byte("b"))})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:20])
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := DecodeManifest(data)
		if err == nil && 45+32*len(hs) != len(data) {
			t.Fatalf("%d hashes from %d bytes", len(hs), len(data))
		}
	})
}
