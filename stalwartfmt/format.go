package stalwartfmt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/pierrec/lz4/v4"

	"github.com/tailer-backup/tailer/blobfs"
)

// Magic is the first byte of every file (after LZ4 decompression), before
// the subspace letter: Stalwart's importer refuses a file without it.
const Magic byte = 123

// FilePrefix is the name of a subspace file without its letter:
// "subspace_" + letter, the names Stalwart's own export uses.
const FilePrefix = "subspace_"

// BlobSubspace is the subspace whose file holds the message blobs, gathered
// through the links in BlobLinkSubspace and written decompressed, not the
// raw values of family t.
const (
	BlobSubspace     byte = 't'
	BlobLinkSubspace byte = 'k'
	// PropertySubspace holds the schema version at key 0x00.
	PropertySubspace byte = 'p'
)

// hashLen is the length of a blob hash (BLAKE3), the key of family t and
// the prefix of every key of family k.
const hashLen = 32

// maxLen is the largest key or value length a record may carry: Stalwart's
// importer reads at most five LEB128 bytes into a u32.
const maxLen = 1<<32 - 1

// Subspace describes one file of a Stalwart dump.
type Subspace struct {
	Letter byte
	// KeyOnly subspaces are written with every value empty (Stalwart's
	// exporter iterates them without values; its importer rebuilds them
	// from the key alone).
	KeyOnly bool
	// Blobs marks the blob subspace: records are gathered from the links
	// (BlobLinkSubspace), one per distinct hash, value decompressed.
	Blobs bool
}

// FileName is the file the subspace is written to.
func (s Subspace) FileName() string { return FilePrefix + string(s.Letter) }

// Layout is what one schema version exports: the subspaces written, in the
// order tailer writes them, and those Stalwart's export leaves out.
type Layout struct {
	Schema    uint32
	Stalwart  string // the Stalwart release line that writes this schema
	Exported  []Subspace
	Skipped   []byte
	byLetter  map[byte]Subspace
	isSkipped map[byte]bool
}

// Lookup returns the subspace with this letter, if the layout exports it.
func (l *Layout) Lookup(letter byte) (Subspace, bool) {
	s, ok := l.byLetter[letter]
	return s, ok
}

// IsSkipped reports whether Stalwart's export leaves the subspace out.
func (l *Layout) IsSkipped(letter byte) bool { return l.isSkipped[letter] }

// layouts holds the schema versions tailer knows, from Stalwart's
// crates/common/src/manager/backup.rs (Family::subspaces) and the
// SUBSPACE_* constants of crates/store/src/lib.rs; see doc.go.
var layouts = map[uint32]*Layout{
	6: newLayout(6, "0.16",
		// Family::Data
		"a", "i-", "u", "n", "p",
		// Family::Blob
		"t*", "k",
		// Family::Registry
		"s", "b-", "g", "d",
		// Family::Changelog
		"l",
		// Family::Queue
		"e", "q",
		// Family::Report
		"h", "r",
		// Family::Telemetry
		"o", "x",
		// Family::Tasks
		"f",
	).skip("mjwyzvc"),
}

// newLayout builds a layout from "letter[-|*]" specs: "-" key only, "*"
// the blob subspace.
func newLayout(schema uint32, release string, specs ...string) *Layout {
	l := &Layout{Schema: schema, Stalwart: release, byLetter: map[byte]Subspace{}, isSkipped: map[byte]bool{}}
	for _, s := range specs {
		sub := Subspace{Letter: s[0], KeyOnly: strings.HasSuffix(s, "-"), Blobs: strings.HasSuffix(s, "*")}
		l.Exported = append(l.Exported, sub)
		l.byLetter[sub.Letter] = sub
	}
	return l
}

func (l *Layout) skip(letters string) *Layout {
	for i := 0; i < len(letters); i++ {
		l.Skipped = append(l.Skipped, letters[i])
		l.isSkipped[letters[i]] = true
	}
	return l
}

// KnownSchemas lists the schema versions tailer can write a dump for, ascending.
func KnownSchemas() []uint32 {
	out := make([]uint32, 0, len(layouts))
	for v := range layouts {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ErrUnknownSchema is wrapped by LayoutFor's error for a schema version
// tailer does not know, so callers can tell it from I/O errors.
var ErrUnknownSchema = errors.New("unknown Stalwart schema version")

// LayoutFor returns the layout of a schema version. An unknown version is
// refused by name: writing files for a layout tailer has not read from
// Stalwart's source would produce an import that fails or, worse, silently
// drops a subspace.
func LayoutFor(schema uint32) (*Layout, error) {
	if l, ok := layouts[schema]; ok {
		return l, nil
	}
	var known []string
	for _, v := range KnownSchemas() {
		known = append(known, fmt.Sprintf("%d (Stalwart %s)", v, layouts[v].Stalwart))
	}
	return nil, fmt.Errorf("%w %d: the store's family p key 0x00 says %d; tailer writes Stalwart's import format only for schema %s",
		ErrUnknownSchema, schema, schema, strings.Join(known, ", "))
}

// ParseSchemaVersion decodes the value at family p, key 0x00: a u32 big
// endian, as Stalwart serializes it.
func ParseSchemaVersion(v []byte) (uint32, error) {
	if len(v) != 4 {
		return 0, fmt.Errorf("schema version at family p key 0x00 is %d bytes (%x), want a 4-byte big-endian u32", len(v), v)
	}
	return binary.BigEndian.Uint32(v), nil
}

// FileWriter writes one subspace file: an LZ4 frame holding the header
// (Magic, the letter, the schema version u32 LE) and the records
// (LEB128 key length, key, LEB128 value length, value).
type FileWriter struct {
	zw      *lz4.Writer
	cw      *countWriter
	buf     []byte
	Records uint64 // records written
	Raw     int64  // key and value bytes written (before framing)
}

// NewFileWriter starts a subspace file on w. Blocks are 64 KiB and
// independent, as Stalwart's encoder writes them, with a content checksum
// so a damaged file fails to import instead of importing wrong bytes.
func NewFileWriter(w io.Writer, letter byte, schema uint32) (*FileWriter, error) {
	cw := &countWriter{w: w}
	zw := lz4.NewWriter(cw)
	if err := zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true),
		lz4.BlockChecksumOption(false), lz4.ConcurrencyOption(1)); err != nil {
		return nil, fmt.Errorf("configure lz4 frame: %w", err)
	}
	fw := &FileWriter{zw: zw, cw: cw, buf: make([]byte, 0, 16)}
	hdr := []byte{Magic, letter, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(hdr[2:], schema)
	if _, err := zw.Write(hdr); err != nil {
		return nil, fmt.Errorf("write header of subspace %c: %w", letter, err)
	}
	return fw, nil
}

// Add writes one record.
func (fw *FileWriter) Add(key, value []byte) error {
	if len(key) > maxLen || len(value) > maxLen {
		return fmt.Errorf("record with key %d bytes and value %d bytes: Stalwart's importer reads lengths up to %d", len(key), len(value), maxLen)
	}
	fw.buf = binary.AppendUvarint(fw.buf[:0], uint64(len(key)))
	if _, err := fw.zw.Write(fw.buf); err != nil {
		return err
	}
	if _, err := fw.zw.Write(key); err != nil {
		return err
	}
	fw.buf = binary.AppendUvarint(fw.buf[:0], uint64(len(value)))
	if _, err := fw.zw.Write(fw.buf); err != nil {
		return err
	}
	if len(value) > 0 {
		if _, err := fw.zw.Write(value); err != nil {
			return err
		}
	}
	fw.Records++
	fw.Raw += int64(len(key) + len(value))
	return nil
}

// Written is the number of framed (compressed) bytes written so far.
func (fw *FileWriter) Written() int64 { return fw.cw.n }

// Close ends the LZ4 frame (end mark and content checksum). It does not
// close the underlying writer.
func (fw *FileWriter) Close() error {
	if err := fw.zw.Close(); err != nil {
		return fmt.Errorf("finish lz4 frame: %w", err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Blob value markers: the last byte of every value in family t says how
// the rest is stored (Stalwart's crates/store/src/dispatch/blob.rs).
const (
	MarkerNone = blobfs.MarkerNone // raw payload
	MarkerLZ4  = blobfs.MarkerLZ4  // u32 LE uncompressed length, then one LZ4 block
)

// DecodeBlob turns a value of family t into the blob's bytes as Stalwart's
// BlobStore::get_blob returns them, which is what its export writes and
// its import expects: 0x00 drops the marker, 0xA1 decompresses the LZ4
// block after the length prefix; an empty value is an empty blob; any other
// last byte is returned as is (Stalwart logs BlobMissingMarker and does the
// same), with unmarked set so the caller can count them. It is the codec
// of a filesystem blob store's files too (blobfs.Decode), one function.
func DecodeBlob(v []byte) (blob []byte, unmarked bool, err error) {
	return blobfs.Decode(v)
}

// InRange reports whether Stalwart's exporter reads the key: it iterates
// each subspace from key [0x00] (inclusive) to 32 bytes of 0xFF, with the
// RocksDB upper bound set to that end key plus a 0x00 byte (exclusive). So
// the empty key and any key longer than 32 bytes that starts with 32 0xFF
// bytes are left out.
func InRange(key []byte) bool {
	if len(key) == 0 {
		return false
	}
	if len(key) > hashLen {
		for _, b := range key[:hashLen] {
			if b != 0xFF {
				return true
			}
		}
		return false
	}
	return true
}

// iterBounds are the lower (inclusive) and upper (exclusive) iterator
// bounds that give InRange's key set.
func iterBounds() (lower, upper []byte) {
	upper = make([]byte, hashLen+1)
	for i := 0; i < hashLen; i++ {
		upper[i] = 0xFF
	}
	return []byte{0x00}, upper
}
