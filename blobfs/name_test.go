package blobfs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// stalwartBase32 is a line-by-line port of Stalwart's Base32Writer
// (push_byte and finalize in crates/utils/src/codec/base32_custom.rs), so
// the encoding is checked against Stalwart's own algorithm and not only
// against Go's base32 with a swapped alphabet.
func stalwartBase32(in []byte) string {
	var out []byte
	var last byte
	pos := 0
	push := func(b byte, remainder bool) {
		var c1, c2 byte = 0, 0xFF
		switch pos % 5 {
		case 0:
			c1 = (b & 0xF8) >> 3
		case 1:
			c1, c2 = ((last&0x07)<<2)|((b&0xC0)>>6), (b&0x3E)>>1
		case 2:
			c1 = ((last & 0x01) << 4) | ((b & 0xF0) >> 4)
		case 3:
			c1, c2 = ((last&0x0F)<<1)|(b>>7), (b&0x7C)>>2
		case 4:
			c1, c2 = ((last&0x03)<<3)|((b&0xE0)>>5), b&0x1F
		}
		out = append(out, Alphabet[c1])
		if !remainder {
			if c2 != 0xFF {
				out = append(out, Alphabet[c2])
			}
			last = b
			pos++
		}
	}
	for _, b := range in {
		push(b, false)
	}
	if pos%5 != 0 {
		push(0, true)
	}
	return string(out)
}

func mustHex(t *testing.T, s string) Hash {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashLen {
		t.Fatalf("bad hex %q", s)
	}
	return Hash(b)
}

func TestNameVectors(t *testing.T) {
	// BLAKE3("") from the BLAKE3 specification's test vectors; the names
	// were computed with Python's base64.b32encode, lower-cased, padding
	// stripped and 234567 translated to 792013.
	empty := mustHex(t, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
	if got := Sum(nil); got != empty {
		t.Fatalf("BLAKE3 of the empty payload = %x", got)
	}
	var seq, ff Hash
	for i := range seq {
		seq[i], ff[i] = byte(i), 0xFF
	}
	tests := []struct {
		hash Hash
		name string
	}{
		{empty, "v2jutopv3gq7nicajxvdnxgjjgn2wjojvxarfn1mtkj2vza3gjra"},
		{seq, "aaaqeayeaudaocajbifqydiob2ibceqtcqkrmfyydenbwha0dypq"},
		{ff, "333333333333333333333333333333333333333333333333333q"},
	}
	for _, tc := range tests {
		if got := tc.hash.Name(); got != tc.name {
			t.Errorf("Name(%x) = %s, want %s", tc.hash, got, tc.name)
		}
		if got := stalwartBase32(tc.hash[:]); got != tc.name {
			t.Errorf("Stalwart's encoder gives %s for %x, want %s", got, tc.hash, tc.name)
		}
		back, err := ParseName(tc.name)
		if err != nil || back != tc.hash {
			t.Errorf("ParseName(%s) = %x, %v", tc.name, back, err)
		}
	}
}

// TestKeyNameMatchesStalwart compares KeyName with the port of Stalwart's
// encoder for keys of every length up to 40 bytes (hashes and Stalwart's
// other keys, such as "STALWART_SPAM_CLASSIFIER_MODEL.lz4").
func TestKeyNameMatchesStalwart(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 40; n++ {
		for range 20 {
			key := make([]byte, n)
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			want := stalwartBase32(key)
			if got := KeyName(key); got != want {
				t.Fatalf("KeyName(%x) = %s, Stalwart writes %s", key, got, want)
			}
			if n == 0 {
				continue
			}
			back, err := ParseKeyName(want)
			if err != nil || !bytes.Equal(back, key) {
				t.Fatalf("ParseKeyName(%s) = %x, %v; want %x", want, back, err, key)
			}
		}
	}
	if got := KeyName([]byte("STALWART_SPAM_CLASSIFIER_MODEL.lz4")); got != stalwartBase32([]byte("STALWART_SPAM_CLASSIFIER_MODEL.lz4")) {
		t.Fatalf("spam model key name %s", got)
	}
}

func TestParseNameRejects(t *testing.T) {
	good := Sum([]byte("x")).Name()
	// Same bits, non-canonical: the last character carries one data bit
	// and four zero bits; flipping a zero bit names the same bytes.
	last := strings.IndexByte(Alphabet, good[NameLen-1])
	noncanon := good[:NameLen-1] + string(Alphabet[last^1])
	for _, s := range []string{
		"", good[:NameLen-1], good + "a", strings.ToUpper(good),
		strings.Replace(good, good[:1], "8", 1), // '8' is not in the alphabet
		good[:10] + "\n" + good[10:NameLen-1],   // Go's decoder skips newlines
		noncanon,
	} {
		if _, err := ParseName(s); !errors.Is(err, ErrNotName) {
			t.Errorf("ParseName(%q) = %v, want ErrNotName", s, err)
		}
	}
}

func TestPath(t *testing.T) {
	var h Hash
	h[0], h[1], h[2], h[3], h[4], h[5] = 0x05, 0xab, 0x00, 0x10, 0xff, 0x0f
	name := h.Name()
	tests := []struct {
		depth int
		want  string
	}{
		{0, "root/" + name},
		{1, "root/5/" + name},
		{2, "root/5/ab/" + name},
		{3, "root/5/ab/0/" + name},
		{4, "root/5/ab/0/10/" + name},
		{5, "root/5/ab/0/10/ff/" + name},
		{6, "root/5/ab/0/10/ff/" + name}, // capped at 5 as Stalwart does
		{100, "root/5/ab/0/10/ff/" + name},
	}
	for _, tc := range tests {
		l, err := NewLayout("root", tc.depth)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Path(h); got != filepath.FromSlash(tc.want) {
			t.Errorf("depth %d: Path = %s, want %s", tc.depth, got, tc.want)
		}
	}
	if _, err := NewLayout("root", -1); !errors.Is(err, ErrDepth) {
		t.Fatalf("NewLayout(-1) = %v, want ErrDepth", err)
	}
}

func TestParseLevel(t *testing.T) {
	for b := 0; b < 256; b++ {
		got, ok := parseLevel(levelName(byte(b)))
		if !ok || got != byte(b) {
			t.Fatalf("level %d round trip: %d %v", b, got, ok)
		}
	}
	for _, s := range []string{"", "05", "0a", "AB", "100", "-1", "+5", "g", "0x5"} {
		if _, ok := parseLevel(s); ok {
			t.Errorf("parseLevel(%q) accepted", s)
		}
	}
}
