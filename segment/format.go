package segment

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind says whether an object is a segment or a full export. It is encoded
// by the start magic (and repeated in the header JSON), so a reader knows
// how to parse the body before looking at anything else.
type Kind uint8

const (
	// KindSegment is a .tseg object: WriteBatches of a sequence range.
	KindSegment Kind = 1
	// KindExport is a .texp object: every key of every family at one sequence.
	KindExport Kind = 2
)

// String returns "segment" or "export", the word used in error messages and
// in the header JSON.
func (k Kind) String() string {
	switch k {
	case KindSegment:
		return "segment"
	case KindExport:
		return "export"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// FormatVersion is the object format version this package writes and the
// only one it reads. Bump it for any change an old reader could misread.
const FormatVersion = 1

// Compression ids stored in the header. Only zstd exists in version 1; the
// id is there so a later version can add others without guessing.
const (
	CompressionZstd uint8 = 1
)

// Encryption ids stored in the header. Version 1 has no encryption; the id
// is reserved so an encrypted object is never mistaken for a plain one.
const (
	EncryptionNone uint8 = 0
)

// Magic strings. They are exported so that tools can sniff an object from
// its first or last 8 bytes.
const (
	SegmentMagic = "TAILSEG\x00" // first 8 bytes of a segment
	ExportMagic  = "TAILEXP\x00" // first 8 bytes of an export
	EndMagic     = "TAILEND\x00" // last 8 bytes of every complete object
)

const (
	prefixLen     = 14 // magic + u16 version + u32 header length
	footerLen     = 24 // u64 body length + u32 trailer length + u32 crc + end magic
	maxHeaderLen  = 16 << 20
	maxTrailerLen = 256 << 20
	minBatchLen   = 12 // RocksDB WriteBatch header: u64 sequence + u32 count

	// The zstd window writers use. A streaming decoder allocates about one
	// window whatever the content size, so segments (many, small, read one
	// after another by restore) use a small one; exports (few, large) a
	// larger one for a better ratio. decoderMaxWindow bounds what a reader
	// accepts, which bounds its memory on hostile input.
	segmentWindow    = 1 << 20
	exportWindow     = 8 << 20
	decoderMaxWindow = exportWindow

	// minimum encoded record sizes, used to sanity-check trailer counts.
	minSegmentRecord = 8 + 8 + 1 + minBatchLen
	minExportRecord  = 3
)

// Limits of format version 1. Everything a reader allocates is bounded by
// these and by bytes the object really holds, never by a length the object
// merely states: a bucket object is untrusted input (anyone with write
// access to the bucket can plant one), and a restore must not be made to
// allocate gigabytes by a small file. Writers refuse records beyond the
// limits, so an object tailer wrote is never one its reader refuses.
const (
	// MaxKeyLen bounds an export key. RocksDB accepts keys up to 4 GiB - 1
	// (WriteBatch length prefixes are varint32); Stalwart's keys are at
	// most a few hundred bytes, so 16 MiB leaves a margin of five orders of
	// magnitude.
	MaxKeyLen = 16 << 20
	// MaxValueLen bounds an export value. RocksDB's own limit is 4 GiB - 1;
	// Stalwart's largest values are blobs (messages and attachments,
	// bounded by the server's maximum message size, tens of MB by
	// default), so 1 GiB leaves a wide margin.
	MaxValueLen = 1 << 30
	// MaxBatchLen bounds a segment's WriteBatch. RocksDB has no limit of
	// its own beyond the u32 entry count; a batch holding one value of
	// MaxValueLen and the rest of its transaction fits in 2 GiB.
	MaxBatchLen = 2 << 30
	// MaxCompressionRatio and RatioAllowance bound the uncompressed body
	// length by the compressed one: uncompressed_len may be at most
	// MaxCompressionRatio × B + RatioAllowance. zstd turns 4 bytes into
	// 128 KiB (a ratio of 32768) on runs of one byte, which is what let a
	// 112 KiB object state a multi-gigabyte batch; with the bound, an
	// object can make a reader handle at most 128 times its own size.
	// Writers pad the body (see Body) when data compresses better.
	MaxCompressionRatio = 128
	RatioAllowance      = 64 << 10
	// MaxWindow is the largest zstd window a reader accepts, the memory a
	// decoder allocates for its history. Writers use 1 MiB (segments) and
	// 8 MiB (exports).
	MaxWindow = decoderMaxWindow
)

// maxUncompressed returns the largest uncompressed body length allowed for
// a compressed body of bodyLen bytes.
func maxUncompressed(bodyLen uint64) uint64 {
	if bodyLen > (math.MaxUint64-RatioAllowance)/MaxCompressionRatio {
		return math.MaxUint64
	}
	return bodyLen*MaxCompressionRatio + RatioAllowance
}

// minBodyLen is the inverse of maxUncompressed: the fewest compressed body
// bytes an uncompressed body of ulen bytes needs.
func minBodyLen(ulen uint64) uint64 {
	if ulen <= RatioAllowance {
		return 0
	}
	return (ulen - RatioAllowance + MaxCompressionRatio - 1) / MaxCompressionRatio
}

func magicFor(k Kind) string {
	if k == KindExport {
		return ExportMagic
	}
	return SegmentMagic
}

// Family is one entry of the column-family table of the source DB. Batches
// refer to column families by numeric id; restore maps them to names (and
// then to the target's ids) through this table, and creates each family
// with its merge operator.
type Family struct {
	ID            uint32 `json:"id"`                       // column family id in the source DB
	Name          string `json:"name"`                     // column family name
	MergeOperator string `json:"merge_operator,omitempty"` // "" or the merge operator's name
}

// Header is the first, uncompressed part of an object: everything needed
// to plan a restore without reading the body.
type Header struct {
	Kind        Kind
	Version     uint16 // FormatVersion when written; the version found when read
	Generation  string // generation id the object belongs to
	DBIdentity  string // the source DB's IDENTITY, to detect a replaced DB
	FirstSeq    uint64 // segment: lowest allowed batch seq; export: its sequence
	LastSeq     uint64 // segment: highest allowed batch seq; export: == FirstSeq
	Created     time.Time
	Families    []Family
	Compression uint8 // CompressionZstd
	Encryption  uint8 // EncryptionNone
}

// Batch is one segment record: a RocksDB WriteBatch as tailer received it.
type Batch struct {
	Seq           uint64 // sequence number of the first entry of the batch
	CaptureUnixMs int64  // tailer's clock when it first saw the batch
	Data          []byte // raw RocksDB WriteBatch representation (rep), as is
}

// Count returns the entry count from the WriteBatch header (bytes 8..12 of
// Data), which restore needs to know which sequence numbers a batch covers.
// It returns 0 if Data is shorter than the 12-byte WriteBatch header.
func (b Batch) Count() uint32 {
	if len(b.Data) < minBatchLen {
		return 0
	}
	return binary.LittleEndian.Uint32(b.Data[8:12])
}

// ChangeLabel records, for one (account, collection) touched in a segment,
// the lowest and highest Stalwart change id, so restore --change-id can pick
// the segment to stop in without downloading the others.
type ChangeLabel struct {
	Account    uint32
	Collection uint8
	MinChange  uint64
	MaxChange  uint64
}

// FamilySum is the per-family key count and digest recorded in an export
// trailer, so a restore can prove it rebuilt the same state.
type FamilySum struct {
	Name   string
	Keys   uint64
	Digest string // lowercase hex SHA-256, see Digest
}

// Trailer is written after the body. It carries the checksums that make an
// object verifiable and the summaries (capture times, labels, digests) that
// let restore plan without reading bodies.
type Trailer struct {
	Records         uint64 // number of body records
	UncompressedLen uint64 // length of the uncompressed body
	BodyChecksum    uint64 // xxhash64 of the uncompressed body
	HeaderChecksum  uint64 // xxhash64 of the encoded header bytes (magic to end of header payload)
	// CompressedChecksum is the xxhash64 of the compressed body bytes as
	// stored. Together with the header checksum and the trailer's CRC it
	// covers every byte of the object, including zstd frame bits that do
	// not change the decompressed content.
	CompressedChecksum uint64

	// Segment only.
	MinCaptureUnixMs int64 // 0 when there are no records
	MaxCaptureUnixMs int64 // 0 when there are no records
	Labels           []ChangeLabel

	// Export only.
	Families       []FamilySum       // one per header family, same order
	AccountChanges map[uint32]uint64 // newest change id per account
}

// ---- header encoding ----

type headerJSON struct {
	Kind        string       `json:"kind"`
	Generation  string       `json:"generation"`
	DBIdentity  string       `json:"db_identity"`
	FirstSeq    uint64       `json:"first_seq"`
	LastSeq     uint64       `json:"last_seq"`
	Created     string       `json:"created"`
	Families    []familyJSON `json:"families"`
	Compression uint8        `json:"compression"`
	Encryption  uint8        `json:"encryption"`
}

type familyJSON struct {
	ID            uint32 `json:"id"`
	Name          string `json:"name"`
	MergeOperator string `json:"merge_operator,omitempty"`
}

// normalizeHeader fills the defaults a writer may leave zero and checks
// that h can be written as an object of kind k.
func normalizeHeader(h Header, k Kind) (Header, error) {
	if h.Kind == 0 {
		h.Kind = k
	}
	if h.Kind != k {
		return h, fmt.Errorf("header kind is %v, want %v", h.Kind, k)
	}
	if h.Version == 0 {
		h.Version = FormatVersion
	}
	if h.Version != FormatVersion {
		return h, fmt.Errorf("header version is %d; this tailer writes only version %d", h.Version, FormatVersion)
	}
	if h.Compression == 0 {
		h.Compression = CompressionZstd
	}
	h.Created = h.Created.UTC()
	h.Families = slices.Clone(h.Families)
	return h, validateHeader(h)
}

// validateHeader checks the facts both writer and reader rely on.
func validateHeader(h Header) error {
	if h.Compression != CompressionZstd {
		return fmt.Errorf("compression id %d is not supported (version %d knows only %d = zstd)", h.Compression, FormatVersion, CompressionZstd)
	}
	if h.Encryption != EncryptionNone {
		return fmt.Errorf("encryption id %d is not supported (version %d knows only %d = none)", h.Encryption, FormatVersion, EncryptionNone)
	}
	if h.FirstSeq > h.LastSeq {
		return fmt.Errorf("first_seq %d is greater than last_seq %d", h.FirstSeq, h.LastSeq)
	}
	if h.Kind == KindExport && h.FirstSeq != h.LastSeq {
		return fmt.Errorf("export first_seq %d differs from last_seq %d", h.FirstSeq, h.LastSeq)
	}
	if y := h.Created.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("created time %v is outside years 0..9999", h.Created)
	}
	if !utf8.ValidString(h.Generation) {
		return fmt.Errorf("generation %q is not valid UTF-8", h.Generation)
	}
	if !utf8.ValidString(h.DBIdentity) {
		return fmt.Errorf("db identity %q is not valid UTF-8", h.DBIdentity)
	}
	names := make(map[string]bool, len(h.Families))
	ids := make(map[uint32]bool, len(h.Families))
	for i, f := range h.Families {
		switch {
		case f.Name == "":
			return fmt.Errorf("column family %d (id %d) has an empty name", i, f.ID)
		case !utf8.ValidString(f.Name):
			return fmt.Errorf("column family %d name %q is not valid UTF-8", i, f.Name)
		case !utf8.ValidString(f.MergeOperator):
			return fmt.Errorf("column family %q merge operator %q is not valid UTF-8", f.Name, f.MergeOperator)
		case names[f.Name]:
			return fmt.Errorf("column family name %q appears twice", f.Name)
		case ids[f.ID]:
			return fmt.Errorf("column family id %d appears twice", f.ID)
		}
		names[f.Name] = true
		ids[f.ID] = true
	}
	return nil
}

// encodeHeader returns the complete header bytes: prefix and JSON payload.
func encodeHeader(h Header) ([]byte, error) {
	hj := headerJSON{
		Kind:        h.Kind.String(),
		Generation:  h.Generation,
		DBIdentity:  h.DBIdentity,
		FirstSeq:    h.FirstSeq,
		LastSeq:     h.LastSeq,
		Created:     h.Created.UTC().Format(time.RFC3339Nano),
		Families:    make([]familyJSON, len(h.Families)),
		Compression: h.Compression,
		Encryption:  h.Encryption,
	}
	for i, f := range h.Families {
		hj.Families[i] = familyJSON(f)
	}
	payload, err := json.Marshal(hj)
	if err != nil {
		return nil, fmt.Errorf("encoding header: %w", err)
	}
	if len(payload) > maxHeaderLen {
		return nil, fmt.Errorf("header is %d bytes, more than the limit of %d", len(payload), maxHeaderLen)
	}
	out := make([]byte, 0, prefixLen+len(payload))
	out = append(out, magicFor(h.Kind)...)
	out = binary.LittleEndian.AppendUint16(out, FormatVersion)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(payload)))
	return append(out, payload...), nil
}

// decodeHeader parses a header payload of an object whose magic says kind k.
func decodeHeader(payload []byte, k Kind, version uint16) (Header, error) {
	var hj headerJSON
	if err := json.Unmarshal(payload, &hj); err != nil {
		return Header{}, fmt.Errorf("header JSON does not parse: %v", err)
	}
	if hj.Kind != k.String() {
		return Header{}, fmt.Errorf("header says kind %q but the magic says %q", hj.Kind, k.String())
	}
	created, err := time.Parse(time.RFC3339Nano, hj.Created)
	if err != nil {
		return Header{}, fmt.Errorf("header created time %q does not parse: %v", hj.Created, err)
	}
	h := Header{
		Kind:        k,
		Version:     version,
		Generation:  hj.Generation,
		DBIdentity:  hj.DBIdentity,
		FirstSeq:    hj.FirstSeq,
		LastSeq:     hj.LastSeq,
		Created:     created.UTC(),
		Compression: hj.Compression,
		Encryption:  hj.Encryption,
	}
	if len(hj.Families) > 0 {
		h.Families = make([]Family, len(hj.Families))
		for i, f := range hj.Families {
			h.Families[i] = Family(f)
		}
	}
	return h, validateHeader(h)
}

// ---- trailer encoding ----

type trailerJSON struct {
	Records         uint64            `json:"records"`
	UncompressedLen uint64            `json:"uncompressed_len"`
	BodyXXHash64    string            `json:"body_xxhash64"`
	HeaderXXHash64  string            `json:"header_xxhash64"`
	CompressedXXH64 string            `json:"compressed_xxhash64"`
	MinCapture      *int64            `json:"min_capture_unix_ms,omitempty"`
	MaxCapture      *int64            `json:"max_capture_unix_ms,omitempty"`
	Labels          []labelJSON       `json:"labels,omitempty"`
	Families        []familySumJSON   `json:"families,omitempty"`
	AccountChanges  map[uint32]uint64 `json:"account_changes,omitempty"`
}

type labelJSON struct {
	Account    uint32 `json:"account"`
	Collection uint8  `json:"collection"`
	MinChange  uint64 `json:"min_change"`
	MaxChange  uint64 `json:"max_change"`
}

type familySumJSON struct {
	Name   string `json:"name"`
	Keys   uint64 `json:"keys"`
	Digest string `json:"digest"`
}

func hex64(v uint64) string { return fmt.Sprintf("%016x", v) }

func parseHex64(s string) (uint64, error) {
	if len(s) != 16 || !isLowerHex(s) {
		return 0, fmt.Errorf("%q is not 16 lowercase hex digits", s)
	}
	return strconv.ParseUint(s, 16, 64)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func encodeTrailer(t Trailer, k Kind) ([]byte, error) {
	tj := trailerJSON{
		Records:         t.Records,
		UncompressedLen: t.UncompressedLen,
		BodyXXHash64:    hex64(t.BodyChecksum),
		HeaderXXHash64:  hex64(t.HeaderChecksum),
		CompressedXXH64: hex64(t.CompressedChecksum),
	}
	switch k {
	case KindSegment:
		tj.MinCapture, tj.MaxCapture = &t.MinCaptureUnixMs, &t.MaxCaptureUnixMs
		for _, l := range t.Labels {
			tj.Labels = append(tj.Labels, labelJSON(l))
		}
	case KindExport:
		tj.Families = make([]familySumJSON, len(t.Families))
		for i, f := range t.Families {
			tj.Families[i] = familySumJSON(f)
		}
		tj.AccountChanges = t.AccountChanges
	}
	payload, err := json.Marshal(tj)
	if err != nil {
		return nil, fmt.Errorf("encoding trailer: %w", err)
	}
	if len(payload) > maxTrailerLen {
		return nil, fmt.Errorf("trailer is %d bytes, more than the limit of %d", len(payload), maxTrailerLen)
	}
	return payload, nil
}

// trailerFromJSON converts a parsed trailer and checks it against the
// header.
func trailerFromJSON(tj trailerJSON, h Header) (Trailer, error) {
	t := Trailer{Records: tj.Records, UncompressedLen: tj.UncompressedLen}
	var err error
	if t.BodyChecksum, err = parseHex64(tj.BodyXXHash64); err != nil {
		return Trailer{}, fmt.Errorf("trailer body_xxhash64: %v", err)
	}
	if t.HeaderChecksum, err = parseHex64(tj.HeaderXXHash64); err != nil {
		return Trailer{}, fmt.Errorf("trailer header_xxhash64: %v", err)
	}
	if t.CompressedChecksum, err = parseHex64(tj.CompressedXXH64); err != nil {
		return Trailer{}, fmt.Errorf("trailer compressed_xxhash64: %v", err)
	}
	switch h.Kind {
	case KindSegment:
		if tj.MinCapture == nil || tj.MaxCapture == nil {
			return Trailer{}, errors.New("segment trailer lacks min/max capture time")
		}
		t.MinCaptureUnixMs, t.MaxCaptureUnixMs = *tj.MinCapture, *tj.MaxCapture
		if t.Records == 0 && (t.MinCaptureUnixMs != 0 || t.MaxCaptureUnixMs != 0) {
			return Trailer{}, errors.New("segment trailer has capture times but no records")
		}
		if t.MinCaptureUnixMs > t.MaxCaptureUnixMs {
			return Trailer{}, fmt.Errorf("segment trailer min capture %d is after max capture %d", t.MinCaptureUnixMs, t.MaxCaptureUnixMs)
		}
		if t.Records > t.UncompressedLen/minSegmentRecord {
			return Trailer{}, fmt.Errorf("trailer claims %d records in %d uncompressed bytes", t.Records, t.UncompressedLen)
		}
		for _, l := range tj.Labels {
			t.Labels = append(t.Labels, ChangeLabel(l))
		}
		if err := checkLabels(t.Labels); err != nil {
			return Trailer{}, fmt.Errorf("segment trailer labels: %v", err)
		}
	case KindExport:
		if len(tj.Families) != len(h.Families) {
			return Trailer{}, fmt.Errorf("export trailer has %d family sums for %d header families", len(tj.Families), len(h.Families))
		}
		if len(tj.Families) > 0 {
			t.Families = make([]FamilySum, len(tj.Families))
		}
		var keys uint64
		for i, f := range tj.Families {
			if f.Name != h.Families[i].Name {
				return Trailer{}, fmt.Errorf("export trailer family %d is %q, header says %q", i, f.Name, h.Families[i].Name)
			}
			if len(f.Digest) != 64 || !isLowerHex(f.Digest) {
				return Trailer{}, fmt.Errorf("export trailer family %q digest %q is not 64 lowercase hex digits", f.Name, f.Digest)
			}
			t.Families[i] = FamilySum(f)
			keys += f.Keys
			if keys < f.Keys {
				return Trailer{}, errors.New("export trailer key counts overflow")
			}
		}
		if keys != t.Records {
			return Trailer{}, fmt.Errorf("export trailer family key counts add up to %d, records is %d", keys, t.Records)
		}
		if t.Records > t.UncompressedLen/minExportRecord {
			return Trailer{}, fmt.Errorf("trailer claims %d records in %d uncompressed bytes", t.Records, t.UncompressedLen)
		}
		t.AccountChanges = tj.AccountChanges
	}
	return t, nil
}

// sortLabels returns labels sorted by (account, collection), so equal
// segments encode to equal bytes, or an error if one is invalid.
func sortLabels(in []ChangeLabel) ([]ChangeLabel, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := slices.Clone(in)
	slices.SortFunc(out, compareLabels)
	return out, checkLabels(out)
}

func compareLabels(a, b ChangeLabel) int {
	if a.Account != b.Account {
		if a.Account < b.Account {
			return -1
		}
		return 1
	}
	return int(a.Collection) - int(b.Collection)
}

func checkLabels(ls []ChangeLabel) error {
	for i, l := range ls {
		if l.MinChange > l.MaxChange {
			return fmt.Errorf("account %d collection %d: min change %d > max change %d", l.Account, l.Collection, l.MinChange, l.MaxChange)
		}
		if i > 0 && compareLabels(ls[i-1], l) >= 0 {
			return fmt.Errorf("account %d collection %d: labels not sorted or duplicated", l.Account, l.Collection)
		}
	}
	return nil
}

// ---- object names ----

// SegmentName returns the object name of a segment holding the batches with
// first ≤ seq ≤ last. Fixed-width hex makes names sort in sequence order, so
// a restore is planned from one LIST.
func SegmentName(first, last uint64) string {
	return fmt.Sprintf("%016x-%016x.tseg", first, last)
}

// ExportName returns the object name of an export consistent at seq.
func ExportName(seq uint64) string {
	return fmt.Sprintf("%016x.texp", seq)
}

// ParseSegmentName is the inverse of SegmentName. It accepts a bare name or
// a bucket key (only the part after the last '/' is parsed) and rejects
// anything SegmentName would not produce.
func ParseSegmentName(name string) (first, last uint64, err error) {
	base := name[strings.LastIndexByte(name, '/')+1:]
	s, ok := strings.CutSuffix(base, ".tseg")
	if !ok || len(s) != 33 || s[16] != '-' {
		return 0, 0, fmt.Errorf("segment name %q is not <16 hex>-<16 hex>.tseg", name)
	}
	if first, err = parseHex64(s[:16]); err != nil {
		return 0, 0, fmt.Errorf("segment name %q: %v", name, err)
	}
	if last, err = parseHex64(s[17:]); err != nil {
		return 0, 0, fmt.Errorf("segment name %q: %v", name, err)
	}
	if first > last {
		return 0, 0, fmt.Errorf("segment name %q: first sequence is greater than last", name)
	}
	return first, last, nil
}

// ParseExportName is the inverse of ExportName; like ParseSegmentName it
// accepts a bare name or a bucket key.
func ParseExportName(name string) (seq uint64, err error) {
	base := name[strings.LastIndexByte(name, '/')+1:]
	s, ok := strings.CutSuffix(base, ".texp")
	if !ok || len(s) != 16 {
		return 0, fmt.Errorf("export name %q is not <16 hex>.texp", name)
	}
	if seq, err = parseHex64(s); err != nil {
		return 0, fmt.Errorf("export name %q: %v", name, err)
	}
	return seq, nil
}
