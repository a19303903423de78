package stalwartfmt_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/stalwartfmt"
)

// TestDecodeBlob round-trips both markers (the 0xA1 value built with LZ4
// block compression here, as Stalwart's put_blob stores it) and checks the
// other cases against the document and the test's own decoder.
func TestDecodeBlob(t *testing.T) {
	large := text(200_000, "large") // several LZ4 windows
	small := []byte("Subject: hi\r\n\r\nhello")
	cases := []struct {
		name     string
		value    []byte
		want     []byte
		unmarked bool
	}{
		{"raw", append(bytes.Clone(small), 0x00), small, false},
		{"raw empty payload", []byte{0x00}, []byte{}, false},
		{"lz4", lz4Value(t, small), small, false},
		{"lz4 large", lz4Value(t, large), large, false},
		{"empty value", []byte{}, []byte{}, false},
		{"no marker", []byte("abc\x42"), []byte("abc\x42"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, unmarked, err := stalwartfmt.DecodeBlob(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) || unmarked != tc.unmarked {
				t.Fatalf("DecodeBlob = %s (unmarked %v), want %s (%v)", short(got), unmarked, short(tc.want), tc.unmarked)
			}
			indep, err := decodeBlobValue(tc.value)
			if err != nil || !bytes.Equal(indep, got) {
				t.Fatalf("independent decoder: %s, %v", short(indep), err)
			}
		})
	}
	bad := lz4Value(t, small)
	for name, v := range map[string][]byte{
		"lz4 without prefix":    {1, 2, 0xA1},
		"lz4 prefix too large":  append(binary.LittleEndian.AppendUint32(nil, uint32(len(small)+10)), bad[4:]...),
		"lz4 prefix too small":  append(binary.LittleEndian.AppendUint32(nil, 3), bad[4:]...),
		"lz4 corrupt block":     append(binary.LittleEndian.AppendUint32(nil, 100), 0xF0, 0xFF, 0xA1),
		"lz4 truncated literal": append(binary.LittleEndian.AppendUint32(nil, 100), 0x50, 'a', 0xA1),
	} {
		if _, _, err := stalwartfmt.DecodeBlob(v); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestFileWriter writes records whose lengths sit on LEB128 byte
// boundaries and reads them back with the independent decoder.
func TestFileWriter(t *testing.T) {
	var buf bytes.Buffer
	fw, err := stalwartfmt.NewFileWriter(&buf, 'p', 6)
	if err != nil {
		t.Fatal(err)
	}
	var want []kv
	for i, n := range []int{0, 1, 127, 128, 16383, 16384, 70_000, 2_097_152} {
		k := []byte{byte(i), 'k'}
		v := bytes.Repeat([]byte{byte(i)}, n)
		if err := fw.Add(k, v); err != nil {
			t.Fatal(err)
		}
		want = append(want, kv{Key: k, Value: v})
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if fw.Records != uint64(len(want)) || fw.Written() != int64(buf.Len()) {
		t.Fatalf("Records %d, Written %d; want %d, %d", fw.Records, fw.Written(), len(want), buf.Len())
	}
	f, err := decodeDumpFile(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Letter != 'p' || f.Schema != 6 || len(f.Records) != len(want) {
		t.Fatalf("header %c/%d, %d records", f.Letter, f.Schema, len(f.Records))
	}
	for i := range want {
		if !bytes.Equal(f.Records[i].Key, want[i].Key) || !bytes.Equal(f.Records[i].Value, want[i].Value) {
			t.Fatalf("record %d differs", i)
		}
	}
	// The frame is what lz4_flex reads: 64 KiB independent blocks, content
	// checksum, no dictionary.
	if flg, bd := buf.Bytes()[4], buf.Bytes()[5]; flg != 0x64 || bd != 0x40 {
		t.Fatalf("frame descriptor FLG %#x BD %#x, want 0x64 0x40", flg, bd)
	}
}

// TestXXH32 pins the test decoder's checksum to known values, so a frame
// it accepts is a frame any LZ4 reader accepts.
func TestXXH32(t *testing.T) {
	for in, want := range map[string]uint32{"": 0x02CC5D05, "abc": 0x32D153FF} {
		if got := xxh32([]byte(in), 0); got != want {
			t.Errorf("xxh32(%q) = %#x, want %#x", in, got, want)
		}
	}
}

func TestInRange(t *testing.T) {
	ff := bytes.Repeat([]byte{0xFF}, 32)
	for _, k := range [][]byte{{}, {0}, {1, 2}, ff, append(bytes.Clone(ff), 0), append(bytes.Clone(ff), 0xFF), append([]byte{0xFE}, ff...), bytes.Repeat([]byte{0xFF}, 31)} {
		if got, want := stalwartfmt.InRange(k), stalwartReads(k); got != want {
			t.Errorf("InRange(%x) = %v, the document's range says %v", k, got, want)
		}
	}
	if _, err := stalwartfmt.LayoutFor(42); err == nil || !strings.Contains(err.Error(), "42") {
		t.Fatalf("LayoutFor(42): %v", err)
	}
}

// TestReferenceLZ4 decodes the golden files with the reference LZ4
// implementation's command-line tool (Debian package lz4), when present,
// and checks it sees the same content as the test decoder: the frames are
// standard, not just readable by a decoder written alongside the writer.
func TestReferenceLZ4(t *testing.T) {
	bin, err := exec.LookPath("lz4")
	if err != nil {
		t.Skip("no lz4 command (apt-get install lz4) to cross-check the frames")
	}
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "subspace_*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		ref, err := exec.Command(bin, "-d", "-c", f).Output()
		if err != nil {
			t.Fatalf("lz4 -d %s: %v", f, err)
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mine, err := lz4FrameDecode(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(ref, mine) {
			t.Fatalf("%s: the reference lz4 decodes %d bytes, the test decoder %d", f, len(ref), len(mine))
		}
	}
}
