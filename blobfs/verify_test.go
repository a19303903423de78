package blobfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	payload := bytes.Repeat([]byte("Subject: hello\r\n\r\nbody "), 400)
	h := Sum(payload)
	raw, lz := Encode(payload, false), Encode(payload, true)
	if lz[len(lz)-1] != MarkerLZ4 || len(lz) >= len(raw) {
		t.Fatalf("compressible payload not LZ4 encoded: %d bytes, marker %#x", len(lz), lz[len(lz)-1])
	}
	other := Sum([]byte("another message"))
	tests := []struct {
		name     string
		data     []byte
		hash     Hash
		want     Status
		unmarked bool
	}{
		{"raw", raw, h, Complete, false},
		{"lz4", lz, h, Complete, false},
		{"unmarked payload, read whole as Stalwart does", append(payload[:len(payload):len(payload)], 'x'), Sum(append(payload[:len(payload):len(payload)], 'x')), Complete, true},
		{"empty file: just created", nil, h, Incomplete, false},
		{"raw, half written", raw[:len(raw)/2], h, Incomplete, false},
		// Hashes right read whole, as a pre-marker Stalwart's blob would;
		// Ready waits for such a file to settle.
		{"raw, all but the marker", raw[:len(raw)-1], h, Complete, true},
		{"lz4, half written", lz[:len(lz)/2], h, Incomplete, false},
		{"raw, under another name", raw, other, Incomplete, false},
		{"lz4 prefix cut short", []byte{1, 2, MarkerLZ4}, h, Incomplete, false},
		{"empty payload", []byte{MarkerNone}, Sum(nil), Complete, false},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := VerifyBytes(tc.data, tc.hash)
			if r.Status != tc.want || r.Size != int64(len(tc.data)) {
				t.Fatalf("VerifyBytes = %+v, want %v", r, tc.want)
			}
			if tc.want == Incomplete && r.Why == "" {
				t.Fatal("an incomplete result says nothing about why")
			}
			if tc.want == Complete && r.Unmarked != tc.unmarked {
				t.Fatalf("Unmarked = %v, want %v", r.Unmarked, tc.unmarked)
			}
			path := filepath.Join(dir, string(rune('a'+i)))
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			fr, err := Verify(path, tc.hash)
			if err != nil {
				t.Fatal(err)
			}
			if fr.Status != r.Status || fr.Size != r.Size || fr.Marker != r.Marker {
				t.Fatalf("Verify(file) = %+v, VerifyBytes = %+v", fr, r)
			}
		})
	}
}

func TestVerifyMissingFile(t *testing.T) {
	_, err := Verify(filepath.Join(t.TempDir(), "gone"), Hash{})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("err = %v, want a wrapped ErrNotExist naming the file", err)
	}
}

// TestVerifyGrowingFile follows a file through Stalwart's write: created
// empty, written in pieces in place; it is Incomplete until the last byte.
func TestVerifyGrowingFile(t *testing.T) {
	payload := bytes.Repeat([]byte{0, 1, 2, 0}, 5000) // zero bytes inside: a cut may end in 0x00
	data := Encode(payload, false)
	h := Sum(payload)
	path := filepath.Join(t.TempDir(), h.Name())
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for written := 0; written < len(data); {
		r, err := Verify(path, h)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != Incomplete {
			t.Fatalf("complete after %d of %d bytes", written, len(data))
		}
		n := min(4093, len(data)-written)
		if _, err := f.Write(data[written : written+n]); err != nil {
			t.Fatal(err)
		}
		written += n
	}
	if r, err := Verify(path, h); err != nil || r.Status != Complete {
		t.Fatalf("after the last write: %+v, %v", r, err)
	}
}

func TestReady(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const settle = time.Minute
	fresh, old := now.Add(-time.Second), now.Add(-time.Hour)
	tests := []struct {
		name string
		r    Result
		mod  time.Time
		want Readiness
	}{
		{"complete, marked, fresh", Result{Status: Complete}, fresh, Ready},
		{"complete, unmarked, fresh: the marker may follow", Result{Status: Complete, Unmarked: true}, fresh, NotReady},
		{"complete, unmarked, settled", Result{Status: Complete, Unmarked: true}, old, Ready},
		{"incomplete, fresh", Result{Why: "x"}, fresh, NotReady},
		{"incomplete, settled", Result{Why: "x"}, old, Abandoned},
		{"mtime in the future (clock step)", Result{Why: "x"}, now.Add(time.Hour), NotReady},
	}
	for _, tc := range tests {
		if got := tc.r.Ready(tc.mod, now, settle); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDecodeRefusesImpossibleLZ4Length: a damaged file's length prefix is
// refused before it is allocated: a 9-byte file announcing 4 GiB must not
// make the shipper or an export allocate 4 GiB.
func TestDecodeRefusesImpossibleLZ4Length(t *testing.T) {
	data := []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, MarkerLZ4}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := Decode(data)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "more than LZ4 can expand to") {
		t.Fatalf("Decode = %v, want the impossible length refused", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("Decode allocated %d bytes for a 9-byte file", got)
	}
	// A real compressed blob at a high ratio still decodes.
	payload := make([]byte, 1<<20)
	got, _, err := Decode(Encode(payload, true))
	if err != nil || len(got) != len(payload) {
		t.Fatalf("a 1 MiB run of zeros: %d bytes, %v", len(got), err)
	}
}
