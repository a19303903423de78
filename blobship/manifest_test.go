package blobship

import (
	"encoding/binary"
	"errors"
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
