package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"maps"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// countWriter counts the bytes the destination accepted, for body length
// and progress reporting, and hashes them while sum is set (the body).
type countWriter struct {
	w   io.Writer
	n   int64
	sum *xxhash.Digest
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.sum != nil {
		c.sum.Write(p[:n])
	}
	return n, err
}

// objectWriter is the part shared by segment and export writers: header,
// zstd body with running checksum, trailer and footer.
type objectWriter struct {
	kind      Kind
	out       countWriter
	enc       *zstd.Encoder
	body      *xxhash.Digest
	ulen      uint64
	records   uint64
	hdrSum    uint64
	bodyStart int64
	err       error // sticky: after a failure the object is unusable
	closed    bool
	scratch   []byte
	pool      *Encoders // nil: enc is this writer's own
	encKey    encoderKey
}

func newObjectWriter(w io.Writer, h Header, k Kind, opts []WriterOption) (*objectWriter, Header, error) {
	var cfg writerConfig
	for _, o := range opts {
		o(&cfg)
	}
	level, err := cfg.level.encoderLevel()
	if err != nil {
		return nil, h, fmt.Errorf("%v writer: %w", k, err)
	}
	h, err = normalizeHeader(h, k)
	if err != nil {
		return nil, h, fmt.Errorf("%v writer: invalid header: %w", k, err)
	}
	hdr, err := encodeHeader(h)
	if err != nil {
		return nil, h, fmt.Errorf("%v writer: %w", k, err)
	}
	ow := &objectWriter{kind: k, out: countWriter{w: w}, body: xxhash.New(), hdrSum: xxhash.Sum64(hdr)}
	if _, err := ow.out.Write(hdr); err != nil {
		return nil, h, fmt.Errorf("%v writer: writing header: %w", k, err)
	}
	ow.bodyStart = ow.out.n
	ow.out.sum = xxhash.New()
	window := segmentWindow
	if k == KindExport {
		window = exportWindow
	}
	// Concurrency 1: tailer writes many small segments, and a synchronous
	// encoder has no goroutines to leak and produces deterministic output
	// (the same batches give the same bytes, which idempotent upload needs).
	// Lower encoder memory for segments only (1 MiB window: as fast, about
	// half the allocation). Not for exports: with it, the encoder's history
	// buffer is the 8 MiB window plus one block, so every 128 KiB block moves
	// the whole history down (40 % of export time in memmove, pprof);
	// without it exports stream 1.6x faster (95 -> 155 MB/s, docs/benchmarks.md)
	// for 8 MiB more memory, still flat in the store's size.
	// The level changes only how hard the encoder searches for matches;
	// window, checksum and frame layout are the same at every level.
	ow.pool, ow.encKey = cfg.pool, encoderKey{kind: k, level: level}
	if ow.pool != nil {
		if ow.enc = ow.pool.get(ow.encKey); ow.enc != nil {
			ow.enc.Reset(&ow.out)
			return ow, h, nil
		}
	}
	ow.enc, err = zstd.NewWriter(&ow.out,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(window),
		zstd.WithLowerEncoderMem(k != KindExport),
		zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, h, fmt.Errorf("%v writer: creating zstd encoder: %w", k, err)
	}
	return ow, h, nil
}

// usable reports the sticky error, or an error after Close.
func (ow *objectWriter) usable(op string) error {
	if ow.err != nil {
		return ow.err
	}
	if ow.closed {
		return fmt.Errorf("%v writer: %s after Close", ow.kind, op)
	}
	return nil
}

// write sends uncompressed body bytes through the checksum and the encoder.
func (ow *objectWriter) write(p []byte) error {
	ow.body.Write(p)
	ow.ulen += uint64(len(p))
	if _, err := ow.enc.Write(p); err != nil {
		ow.err = fmt.Errorf("%v writer: writing body: %w", ow.kind, err)
		return ow.err
	}
	return nil
}

// finish ends the body and writes trailer and footer. t carries the
// kind-specific fields; finish fills the common ones.
func (ow *objectWriter) finish(t *Trailer) error {
	if err := ow.usable("Close"); err != nil {
		return err
	}
	ow.closed = true
	fail := func(what string, err error) error {
		ow.err = fmt.Errorf("%v writer: %s: %w", ow.kind, what, err)
		return ow.err
	}
	if err := ow.enc.Close(); err != nil {
		return fail("ending body", err)
	}
	if ow.pool != nil {
		// The frame is complete; the encoder holds no state of this object.
		ow.pool.put(ow.encKey, ow.enc)
		ow.enc = nil
	}
	if err := ow.pad(); err != nil {
		return fail("padding body", err)
	}
	bodyLen := ow.out.n - ow.bodyStart
	t.CompressedChecksum = ow.out.sum.Sum64()
	ow.out.sum = nil
	t.Records = ow.records
	t.UncompressedLen = ow.ulen
	t.BodyChecksum = ow.body.Sum64()
	t.HeaderChecksum = ow.hdrSum
	payload, err := encodeTrailer(*t, ow.kind)
	if err != nil {
		return fail("trailer", err)
	}
	footer := make([]byte, 0, footerLen)
	footer = binary.LittleEndian.AppendUint64(footer, uint64(bodyLen))
	footer = binary.LittleEndian.AppendUint32(footer, uint32(len(payload)))
	footer = binary.LittleEndian.AppendUint32(footer, crc32c(payload))
	footer = append(footer, EndMagic...)
	if _, err := ow.out.Write(append(payload, footer...)); err != nil {
		return fail("writing trailer", err)
	}
	return nil
}

// skippableMagic is the little-endian magic of a zstd skippable frame
// (0x184D2A50): decoders skip its content, so padding in it changes the
// compressed length and nothing else.
const skippableMagic = 0x184D2A50

// pad appends skippable frames of zero bytes after the zstd frame when the
// body compressed better than MaxCompressionRatio, so that the object
// passes the reader's ratio check. The padding is at most 1/128 of the
// uncompressed length, and only data that compressed more than 128-fold
// pays it.
func (ow *objectWriter) pad() error {
	have := uint64(ow.out.n - ow.bodyStart)
	want := minBodyLen(ow.ulen)
	if have >= want {
		return nil
	}
	missing := max(want-have, 8)
	zeros := make([]byte, min(missing, 64<<10))
	for missing > 0 {
		content := min(missing-8, 1<<30) // one frame's content, < 4 GiB
		if rest := missing - 8 - content; rest > 0 && rest < 8 {
			content -= 8 // leave room for the next frame's header
		}
		var hdr [8]byte
		binary.LittleEndian.PutUint32(hdr[0:4], skippableMagic)
		binary.LittleEndian.PutUint32(hdr[4:8], uint32(content))
		if _, err := ow.out.Write(hdr[:]); err != nil {
			return err
		}
		for left := content; left > 0; {
			n := min(left, uint64(len(zeros)))
			if _, err := ow.out.Write(zeros[:n]); err != nil {
				return err
			}
			left -= n
		}
		missing -= 8 + content
	}
	return nil
}

func crc32c(p []byte) uint32 {
	return crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli))
}

// SegmentWriter streams batches into a segment object. It is not safe for
// concurrent use.
type SegmentWriter struct {
	ow       *objectWriter
	h        Header
	prevSeq  uint64
	min, max int64
	labels   []ChangeLabel
}

// NewSegmentWriter writes the header of a segment to w and returns a writer
// for its batches. h.Kind, h.Version and h.Compression may be left zero;
// h.FirstSeq and h.LastSeq bound the batch sequence numbers that Append
// accepts, so the header never lies about the body. opts choose how the
// body is compressed (WithLevel, WithEncoders); without them the output is
// what every earlier tailer wrote.
func NewSegmentWriter(w io.Writer, h Header, opts ...WriterOption) (*SegmentWriter, error) {
	ow, h, err := newObjectWriter(w, h, KindSegment, opts)
	if err != nil {
		return nil, err
	}
	return &SegmentWriter{ow: ow, h: h}, nil
}

// Append adds one batch. b.Seq must be greater than the previous batch's,
// within [FirstSeq, LastSeq] of the header, and b.Data must hold at least
// the 12-byte WriteBatch header; these are what restore relies on to stop on
// a batch boundary. b.Data is copied into the compressor before Append
// returns. An error from the destination makes the writer unusable.
func (w *SegmentWriter) Append(b Batch) error {
	if err := w.ow.usable("Append"); err != nil {
		return err
	}
	switch {
	case len(b.Data) < minBatchLen:
		return fmt.Errorf("segment writer: batch seq %d is %d bytes, shorter than the %d-byte WriteBatch header", b.Seq, len(b.Data), minBatchLen)
	case uint64(len(b.Data)) > MaxBatchLen:
		return fmt.Errorf("segment writer: batch seq %d is %d bytes, more than the format's limit of %d (MaxBatchLen)", b.Seq, len(b.Data), uint64(MaxBatchLen))
	case b.Seq < w.h.FirstSeq || b.Seq > w.h.LastSeq:
		return fmt.Errorf("segment writer: batch seq %d is outside the header's range %d..%d", b.Seq, w.h.FirstSeq, w.h.LastSeq)
	case w.ow.records > 0 && b.Seq <= w.prevSeq:
		return fmt.Errorf("segment writer: batch seq %d does not follow previous batch seq %d (must strictly increase)", b.Seq, w.prevSeq)
	}
	s := w.ow.scratch[:0]
	s = binary.LittleEndian.AppendUint64(s, b.Seq)
	s = binary.LittleEndian.AppendUint64(s, uint64(b.CaptureUnixMs))
	s = binary.AppendUvarint(s, uint64(len(b.Data)))
	w.ow.scratch = s
	if err := w.ow.write(s); err != nil {
		return err
	}
	if err := w.ow.write(b.Data); err != nil {
		return err
	}
	if w.ow.records == 0 || b.CaptureUnixMs < w.min {
		w.min = b.CaptureUnixMs
	}
	if w.ow.records == 0 || b.CaptureUnixMs > w.max {
		w.max = b.CaptureUnixMs
	}
	w.ow.records++
	w.prevSeq = b.Seq
	return nil
}

// SetLabels sets the change-id labels stored in the trailer (they are only
// known once the batches were seen). The slice is copied and sorted by
// (account, collection) at Close; a duplicate or a label with MinChange >
// MaxChange makes Close fail.
func (w *SegmentWriter) SetLabels(l []ChangeLabel) {
	w.labels = append([]ChangeLabel(nil), l...)
}

// Close ends the body and writes the trailer and footer, then returns the
// trailer as written. It does not close the destination. A segment with no
// batches is valid (tailer never writes one, but it is not an error).
func (w *SegmentWriter) Close() (Trailer, error) {
	if err := w.ow.usable("Close"); err != nil {
		return Trailer{}, err
	}
	labels, err := sortLabels(w.labels)
	if err != nil {
		w.ow.err = fmt.Errorf("segment writer: labels: %w", err)
		return Trailer{}, w.ow.err
	}
	t := Trailer{MinCaptureUnixMs: w.min, MaxCaptureUnixMs: w.max, Labels: labels}
	if err := w.ow.finish(&t); err != nil {
		return Trailer{}, err
	}
	return t, nil
}

// Written returns the bytes written to the destination so far.
func (w *SegmentWriter) Written() int64 { return w.ow.out.n }

// ExportWriter streams every key of every column family into an export
// object, family by family in key order. It is not safe for concurrent use.
type ExportWriter struct {
	ow       *objectWriter
	h        Header
	fam      int
	prevKey  []byte
	havePrev bool
	digests  []*Digest
	accounts map[uint32]uint64
}

// NewExportWriter writes the header of an export to w and returns a writer
// for its entries. h.FirstSeq must equal h.LastSeq (the export sequence);
// h.Families is the table Add's family index refers to. opts as for
// NewSegmentWriter.
func NewExportWriter(w io.Writer, h Header, opts ...WriterOption) (*ExportWriter, error) {
	ow, h, err := newObjectWriter(w, h, KindExport, opts)
	if err != nil {
		return nil, err
	}
	ew := &ExportWriter{ow: ow, h: h, digests: make([]*Digest, len(h.Families))}
	for i := range ew.digests {
		ew.digests[i] = NewDigest()
	}
	return ew, nil
}

// Add appends one key of family h.Families[family]. The family index must
// not decrease, and within a family keys must strictly increase in bytewise
// order (the order RocksDB iterates and SstFileWriter requires); anything
// else is an error and nothing is written. key and value are not retained.
func (w *ExportWriter) Add(family int, key, value []byte) error {
	if err := w.ow.usable("Add"); err != nil {
		return err
	}
	switch {
	case family < 0 || family >= len(w.h.Families):
		return fmt.Errorf("export writer: family index %d out of range (header has %d families)", family, len(w.h.Families))
	case family < w.fam:
		return fmt.Errorf("export writer: family %q (index %d) after family %q (index %d): families must come in header order",
			w.h.Families[family].Name, family, w.h.Families[w.fam].Name, w.fam)
	case uint64(len(key)) > MaxKeyLen:
		return fmt.Errorf("export writer: family %q: key of %d bytes is longer than the format's limit of %d (MaxKeyLen)",
			w.h.Families[family].Name, len(key), MaxKeyLen)
	case uint64(len(value)) > MaxValueLen:
		return fmt.Errorf("export writer: family %q: value of %d bytes (key of %d bytes) is longer than the format's limit of %d (MaxValueLen)",
			w.h.Families[family].Name, len(value), len(key), MaxValueLen)
	case family == w.fam && w.havePrev && bytes.Compare(key, w.prevKey) <= 0:
		return fmt.Errorf("export writer: family %q: key %x does not follow previous key %x (keys must strictly increase)",
			w.h.Families[family].Name, key, w.prevKey)
	}
	s := w.ow.scratch[:0]
	s = binary.AppendUvarint(s, uint64(family))
	s = binary.AppendUvarint(s, uint64(len(key)))
	w.ow.scratch = s
	if err := w.ow.write(s); err != nil {
		return err
	}
	if err := w.ow.write(key); err != nil {
		return err
	}
	if err := w.ow.write(binary.AppendUvarint(s[:0], uint64(len(value)))); err != nil {
		return err
	}
	if err := w.ow.write(value); err != nil {
		return err
	}
	w.digests[family].Add(key, value)
	w.fam = family
	w.prevKey = append(w.prevKey[:0], key...)
	w.havePrev = true
	w.ow.records++
	return nil
}

// SetAccountChanges sets the newest Stalwart change id per account, stored
// in the trailer. The map is copied.
func (w *ExportWriter) SetAccountChanges(m map[uint32]uint64) {
	if len(m) == 0 {
		w.accounts = nil
		return
	}
	w.accounts = maps.Clone(m)
}

// Close ends the body and writes the trailer (with a FamilySum for every
// header family, empty ones included) and footer, then returns the trailer
// as written. It does not close the destination.
func (w *ExportWriter) Close() (Trailer, error) {
	if err := w.ow.usable("Close"); err != nil {
		return Trailer{}, err
	}
	t := Trailer{AccountChanges: w.accounts}
	if len(w.h.Families) > 0 {
		t.Families = make([]FamilySum, len(w.h.Families))
		for i, f := range w.h.Families {
			t.Families[i] = FamilySum{Name: f.Name, Keys: w.digests[i].Keys(), Digest: w.digests[i].Sum()}
		}
	}
	if err := w.ow.finish(&t); err != nil {
		return Trailer{}, err
	}
	return t, nil
}

// Written returns the bytes written to the destination so far, for progress
// reporting; the compressor buffers, so it lags behind the entries added.
func (w *ExportWriter) Written() int64 { return w.ow.out.n }
