package stalwartfmt_test

// An independent reader of Stalwart's import files, written from the format
// description in doc.go and the LZ4 frame and block specifications
// (github.com/lz4/lz4 doc/lz4_Frame_format.md, lz4_Block_format.md), not
// from the writer: it uses neither the package under test nor an LZ4
// library, so a writer bug cannot hide behind a matching reader bug.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// kv is one record.
type kv struct {
	Key, Value []byte
}

// dumpFile is one decoded subspace file.
type dumpFile struct {
	Name    string
	Letter  byte
	Schema  uint32
	Records []kv
}

// readDump decodes every file of an export directory, keyed by letter. It
// refuses anything Stalwart's importer would refuse, and anything else in
// the directory (the importer reads every file).
func readDump(dir string) (map[byte]dumpFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[byte]dumpFile{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file", e.Name())
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		f, err := decodeDumpFile(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		f.Name = e.Name()
		if want := "subspace_" + string(f.Letter); f.Name != want {
			return nil, fmt.Errorf("%s holds subspace %q; Stalwart names that file %s", f.Name, f.Letter, want)
		}
		out[f.Letter] = f
	}
	return out, nil
}

func decodeDumpFile(raw []byte) (dumpFile, error) {
	content, err := lz4FrameDecode(raw)
	if err != nil {
		return dumpFile{}, err
	}
	if len(content) < 6 {
		return dumpFile{}, fmt.Errorf("%d bytes: shorter than the 6-byte header", len(content))
	}
	if content[0] != 123 {
		return dumpFile{}, fmt.Errorf("first byte %d, want the magic marker 123", content[0])
	}
	f := dumpFile{Letter: content[1], Schema: binary.LittleEndian.Uint32(content[2:6])}
	p := content[6:]
	for len(p) > 0 {
		klen, n, err := leb128(p)
		if err != nil {
			return f, fmt.Errorf("record %d key length: %w", len(f.Records), err)
		}
		p = p[n:]
		if uint64(len(p)) < klen {
			return f, fmt.Errorf("record %d: key of %d bytes, %d left", len(f.Records), klen, len(p))
		}
		key := p[:klen]
		p = p[klen:]
		vlen, n, err := leb128(p)
		if err != nil {
			return f, fmt.Errorf("record %d value length: %w", len(f.Records), err)
		}
		p = p[n:]
		if uint64(len(p)) < vlen {
			return f, fmt.Errorf("record %d: value of %d bytes, %d left", len(f.Records), vlen, len(p))
		}
		f.Records = append(f.Records, kv{Key: key, Value: p[:vlen]})
		p = p[vlen:]
	}
	return f, nil
}

// leb128 reads an unsigned LEB128 of at most five bytes whose value fits a
// u32, as Stalwart's importer does.
func leb128(p []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		if i >= len(p) {
			return 0, 0, errors.New("truncated LEB128")
		}
		v |= uint64(p[i]&0x7F) << (7 * i)
		if p[i]&0x80 == 0 {
			if v > 0xFFFFFFFF {
				return 0, 0, fmt.Errorf("LEB128 value %d does not fit a u32", v)
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("LEB128 longer than five bytes")
}

// lz4FrameDecode decodes exactly one LZ4 frame that fills raw, checking
// every checksum present and the constraints of Stalwart's decoder
// (lz4_flex: no dictionary id, block size 64 KiB..4 MiB).
func lz4FrameDecode(raw []byte) ([]byte, error) {
	if len(raw) < 7 || binary.LittleEndian.Uint32(raw) != 0x184D2204 {
		return nil, errors.New("no LZ4 frame magic")
	}
	flg, bd := raw[4], raw[5]
	if flg>>6 != 1 {
		return nil, fmt.Errorf("LZ4 frame version %d", flg>>6)
	}
	if flg&0x02 != 0 || bd&0x8F != 0 {
		return nil, errors.New("LZ4 reserved bits set")
	}
	if flg&0x01 != 0 {
		return nil, errors.New("LZ4 dictionary id: Stalwart's decoder refuses it")
	}
	blockChecksum, hasSize, contentChecksum := flg&0x10 != 0, flg&0x08 != 0, flg&0x04 != 0
	bsID := (bd >> 4) & 7
	if bsID < 4 {
		return nil, fmt.Errorf("LZ4 block size id %d", bsID)
	}
	maxBlock := 1 << (8 + 2*uint(bsID))
	pos := 6
	var size uint64
	if hasSize {
		if len(raw) < pos+8 {
			return nil, errors.New("truncated LZ4 content size")
		}
		size = binary.LittleEndian.Uint64(raw[pos:])
		pos += 8
	}
	if len(raw) <= pos {
		return nil, errors.New("truncated LZ4 frame header")
	}
	if hc := byte(xxh32(raw[4:pos], 0) >> 8); raw[pos] != hc {
		return nil, fmt.Errorf("LZ4 header checksum %#x, want %#x", raw[pos], hc)
	}
	pos++
	var out []byte
	for {
		if len(raw) < pos+4 {
			return nil, errors.New("truncated LZ4 block size")
		}
		bs := binary.LittleEndian.Uint32(raw[pos:])
		pos += 4
		if bs == 0 {
			break
		}
		stored := bs&0x80000000 != 0
		n := int(bs & 0x7FFFFFFF)
		if n > maxBlock || len(raw) < pos+n {
			return nil, fmt.Errorf("LZ4 block of %d bytes (max %d, %d left)", n, maxBlock, len(raw)-pos)
		}
		data := raw[pos : pos+n]
		pos += n
		if blockChecksum {
			if len(raw) < pos+4 || binary.LittleEndian.Uint32(raw[pos:]) != xxh32(data, 0) {
				return nil, errors.New("LZ4 block checksum mismatch")
			}
			pos += 4
		}
		before := len(out)
		if stored {
			out = append(out, data...)
		} else {
			var err error
			// Decoding into the running output serves linked blocks too.
			if out, err = lz4BlockDecode(data, out); err != nil {
				return nil, err
			}
		}
		if len(out)-before > maxBlock {
			return nil, fmt.Errorf("LZ4 block decoded to %d bytes, max %d", len(out)-before, maxBlock)
		}
	}
	if contentChecksum {
		if len(raw) < pos+4 {
			return nil, errors.New("truncated LZ4 content checksum")
		}
		if got, want := binary.LittleEndian.Uint32(raw[pos:]), xxh32(out, 0); got != want {
			return nil, fmt.Errorf("LZ4 content checksum %#x, want %#x", got, want)
		}
		pos += 4
	}
	if hasSize && uint64(len(out)) != size {
		return nil, fmt.Errorf("LZ4 content size %d, frame says %d", len(out), size)
	}
	if pos != len(raw) {
		return nil, fmt.Errorf("%d bytes after the LZ4 frame", len(raw)-pos)
	}
	return out, nil
}

// lz4BlockDecode appends the decoded block to out; matches may reach back
// into what out already holds.
func lz4BlockDecode(src, out []byte) ([]byte, error) {
	start := len(out)
	i := 0
	for {
		if i >= len(src) {
			return nil, errors.New("LZ4 block ends without literals")
		}
		token := src[i]
		i++
		lit := int(token >> 4)
		if lit == 15 {
			for {
				if i >= len(src) {
					return nil, errors.New("truncated LZ4 literal length")
				}
				b := src[i]
				i++
				lit += int(b)
				if b != 255 {
					break
				}
			}
		}
		if i+lit > len(src) {
			return nil, errors.New("LZ4 literals past the block")
		}
		out = append(out, src[i:i+lit]...)
		i += lit
		if i == len(src) {
			return out, nil // the last sequence has literals only
		}
		if i+2 > len(src) {
			return nil, errors.New("truncated LZ4 offset")
		}
		off := int(src[i]) | int(src[i+1])<<8
		i += 2
		if off == 0 || off > len(out) {
			return nil, fmt.Errorf("LZ4 offset %d with %d bytes decoded", off, len(out)-start)
		}
		ml := int(token & 15)
		if ml == 15 {
			for {
				if i >= len(src) {
					return nil, errors.New("truncated LZ4 match length")
				}
				b := src[i]
				i++
				ml += int(b)
				if b != 255 {
					break
				}
			}
		}
		ml += 4
		from := len(out) - off
		for k := 0; k < ml; k++ { // byte by byte: the match may overlap its own output
			out = append(out, out[from+k])
		}
	}
}

// xxh32 is XXH32 (github.com/Cyan4973/xxHash doc/xxhash_spec.md).
func xxh32(p []byte, seed uint32) uint32 {
	const (
		p1 uint32 = 2654435761
		p2 uint32 = 2246822519
		p3 uint32 = 3266489917
		p4 uint32 = 668265263
		p5 uint32 = 374761393
	)
	round := func(acc, lane uint32) uint32 { return bits.RotateLeft32(acc+lane*p2, 13) * p1 }
	n := len(p)
	var h uint32
	if n >= 16 {
		v1, v2, v3, v4 := seed+p1+p2, seed+p2, seed, seed-p1
		for len(p) >= 16 {
			v1 = round(v1, binary.LittleEndian.Uint32(p))
			v2 = round(v2, binary.LittleEndian.Uint32(p[4:]))
			v3 = round(v3, binary.LittleEndian.Uint32(p[8:]))
			v4 = round(v4, binary.LittleEndian.Uint32(p[12:]))
			p = p[16:]
		}
		h = bits.RotateLeft32(v1, 1) + bits.RotateLeft32(v2, 7) + bits.RotateLeft32(v3, 12) + bits.RotateLeft32(v4, 18)
	} else {
		h = seed + p5
	}
	h += uint32(n)
	for len(p) >= 4 {
		h = bits.RotateLeft32(h+binary.LittleEndian.Uint32(p)*p3, 17) * p4
		p = p[4:]
	}
	for _, b := range p {
		h = bits.RotateLeft32(h+uint32(b)*p5, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	h ^= h >> 16
	return h
}

// decodeBlobValue decodes a value of family t by its marker, per doc.go.
func decodeBlobValue(v []byte) ([]byte, error) {
	if len(v) == 0 {
		return v, nil
	}
	switch v[len(v)-1] {
	case 0x00:
		return v[:len(v)-1], nil
	case 0xA1:
		if len(v) < 5 {
			return nil, errors.New("0xA1 value without its length prefix")
		}
		size := binary.LittleEndian.Uint32(v)
		out, err := lz4BlockDecode(v[4:len(v)-1], nil)
		if err != nil {
			return nil, err
		}
		if uint32(len(out)) != size {
			return nil, fmt.Errorf("decoded %d bytes, prefix says %d", len(out), size)
		}
		return out, nil
	}
	return v, nil
}

// stalwartReads is the iteration range of Stalwart's exporter, per doc.go:
// from [0x00] up to, not including, 32 bytes of 0xFF followed by 0x00.
func stalwartReads(key []byte) bool {
	end := append(bytes.Repeat([]byte{0xFF}, 32), 0x00)
	return bytes.Compare(key, []byte{0x00}) >= 0 && bytes.Compare(key, end) < 0
}

// listing renders a decoded export as text, one record a line, for the
// golden file and for readable diffs.
func listing(d map[byte]dumpFile) string {
	var letters []int
	for l := range d {
		letters = append(letters, int(l))
	}
	sort.Ints(letters)
	var b strings.Builder
	for _, l := range letters {
		f := d[byte(l)]
		fmt.Fprintf(&b, "%s schema=%d records=%d\n", f.Name, f.Schema, len(f.Records))
		for _, r := range f.Records {
			fmt.Fprintf(&b, "  %x = %x\n", r.Key, r.Value)
		}
	}
	return b.String()
}
