package segment

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

const (
	readChunk     = 1 << 20   // records larger than this are read in steps
	srcBufferSize = 256 << 10 // compressed read-ahead: few ReadAt calls per body
	outBufferSize = 64 << 10  // uncompressed read-ahead
)

// Reader reads one object. Open checks everything outside the body; the
// body is streamed (never buffered whole) and checked as it is read, so
// memory stays bounded for exports of many gigabytes. A Reader is not safe
// for concurrent use.
type Reader struct {
	ra      io.ReaderAt
	size    int64
	obj     string // "segment <name>": the prefix of every error
	h       Header
	t       Trailer
	hdrEnd  int64 // = body start
	bodyEnd int64
	cur     *cursor
	closed  bool
}

// Open validates the footer, trailer and header of a complete object of
// size bytes: magic, format version, sizes, the trailer's CRC-32C and the
// header's checksum. name identifies the object (e.g. its bucket key) in
// every error. The body is checked by NextBatch, NextEntry or Verify.
// Errors are *Error values wrapping ErrCorrupt, ErrVersion, or the error of
// r.ReadAt.
func Open(r io.ReaderAt, size int64, name string) (*Reader, error) {
	rd := &Reader{ra: r, size: size, obj: "object " + name}
	if err := rd.open(name); err != nil {
		return nil, err
	}
	return rd, nil
}

func (r *Reader) corrupt(start, end int64, format string, args ...any) *Error {
	return newError(r.obj, start, end, ErrCorrupt, format, args...)
}

// readAt reads bytes [off, off+n) of the object.
func (r *Reader) readAt(off, n int64, what string) ([]byte, error) {
	buf := make([]byte, n)
	m, err := r.ra.ReadAt(buf, off)
	if m == len(buf) {
		return buf, nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, r.corrupt(off, off+n, "the object ends at byte %d, inside its %s at bytes %d..%d, although its size is %d: truncated",
			off+int64(m), what, off, off+n, r.size)
	}
	return nil, &Error{Object: r.obj, Start: off, End: off + n, Err: err,
		msg: fmt.Sprintf("%s: reading %s at bytes %d..%d: %v", r.obj, what, off, off+n, err)}
}

func (r *Reader) open(name string) error {
	if r.size < 0 {
		return r.corrupt(0, 0, "negative size %d", r.size)
	}
	n := min(r.size, prefixLen)
	prefix, err := r.readAt(0, n, "header")
	if err != nil {
		return err
	}
	if len(prefix) < len(SegmentMagic) {
		return r.corrupt(0, r.size, "the object is only %d bytes, too short to be a tailer segment or export: truncated", r.size)
	}
	switch string(prefix[:8]) {
	case SegmentMagic:
		r.h.Kind = KindSegment
	case ExportMagic:
		r.h.Kind = KindExport
	default:
		return r.corrupt(0, 8, "bytes 0..8 are %q, not the magic of a tailer segment (%q) or export (%q)", prefix[:8], SegmentMagic, ExportMagic)
	}
	r.obj = r.h.Kind.String() + " " + name
	if len(prefix) < prefixLen {
		return r.corrupt(0, r.size, "the object is only %d bytes, shorter than the %d-byte header prefix: truncated", r.size, prefixLen)
	}
	version := binary.LittleEndian.Uint16(prefix[8:10])
	switch {
	case version > FormatVersion:
		return &Error{Object: r.obj, Start: 8, End: 10, Err: ErrVersion,
			msg: fmt.Sprintf("%s was written by format version %d; this tailer reads version %d: upgrade tailer", r.obj, version, FormatVersion)}
	case version != FormatVersion:
		return r.corrupt(8, 10, "format version %d at bytes 8..10 is not a valid version", version)
	}
	r.h.Version = version
	hlen := int64(binary.LittleEndian.Uint32(prefix[10:14]))
	if hlen > maxHeaderLen {
		return r.corrupt(10, 14, "header length %d at bytes 10..14 exceeds the limit of %d", hlen, maxHeaderLen)
	}
	r.hdrEnd = prefixLen + hlen
	if r.size < r.hdrEnd+footerLen {
		return r.corrupt(0, r.size, "the object is %d bytes, too short for its %d-byte header and the %d-byte footer: truncated", r.size, r.hdrEnd, footerLen)
	}

	// Footer: everything else is found from here.
	footOff := r.size - footerLen
	footer, err := r.readAt(footOff, footerLen, "footer")
	if err != nil {
		return err
	}
	if string(footer[16:]) != EndMagic {
		return r.corrupt(footOff+16, r.size, "no end magic at bytes %d..%d (found %q, want %q): the object is truncated or its footer is damaged",
			footOff+16, r.size, footer[16:], EndMagic)
	}
	bodyLen := binary.LittleEndian.Uint64(footer[0:8])
	tlen := int64(binary.LittleEndian.Uint32(footer[8:12]))
	wantCRC := binary.LittleEndian.Uint32(footer[12:16])
	if tlen > maxTrailerLen {
		return r.corrupt(footOff+8, footOff+12, "trailer length %d exceeds the limit of %d", tlen, maxTrailerLen)
	}
	rest := footOff - tlen - r.hdrEnd
	if rest < 0 || uint64(rest) != bodyLen {
		return r.corrupt(footOff, r.size, "the footer at bytes %d..%d gives a %d-byte body and a %d-byte trailer after the %d-byte header, which does not add up to the object size %d: truncated or corrupt",
			footOff, r.size, bodyLen, tlen, r.hdrEnd, r.size)
	}
	r.bodyEnd = footOff - tlen

	// Trailer, protected by the CRC in the footer.
	payload, err := r.readAt(r.bodyEnd, tlen, "trailer")
	if err != nil {
		return err
	}
	if got := crc32c(payload); got != wantCRC {
		return r.corrupt(r.bodyEnd, footOff, "trailer checksum mismatch over bytes %d..%d (want crc32c %08x, got %08x)", r.bodyEnd, footOff, wantCRC, got)
	}
	var tj trailerJSON
	if err := json.Unmarshal(payload, &tj); err != nil {
		return r.corrupt(r.bodyEnd, footOff, "trailer at bytes %d..%d does not parse: %v", r.bodyEnd, footOff, err)
	}
	wantHdr, err := parseHex64(tj.HeaderXXHash64)
	if err != nil {
		return r.corrupt(r.bodyEnd, footOff, "trailer at bytes %d..%d has an invalid header_xxhash64: %v", r.bodyEnd, footOff, err)
	}

	// Header, protected by the checksum in the trailer.
	hpayload, err := r.readAt(prefixLen, hlen, "header")
	if err != nil {
		return err
	}
	d := xxhash.New()
	d.Write(prefix)
	d.Write(hpayload)
	if got := d.Sum64(); got != wantHdr {
		return r.corrupt(0, r.hdrEnd, "header checksum mismatch over bytes 0..%d (want %016x, got %016x)", r.hdrEnd, wantHdr, got)
	}
	h, err := decodeHeader(hpayload, r.h.Kind, version)
	if err != nil {
		return r.corrupt(0, r.hdrEnd, "header at bytes 0..%d is invalid: %v", r.hdrEnd, err)
	}
	r.h = h
	t, err := trailerFromJSON(tj, h)
	if err != nil {
		return r.corrupt(r.bodyEnd, footOff, "trailer at bytes %d..%d is invalid: %v", r.bodyEnd, footOff, err)
	}
	if limit := maxUncompressed(bodyLen); t.UncompressedLen > limit {
		return r.corrupt(r.bodyEnd, footOff, "trailer at bytes %d..%d says the %d-byte body decompresses to %d bytes, more than the format allows (%d x the body + %d = %d); tailer never writes such an object",
			r.bodyEnd, footOff, bodyLen, t.UncompressedLen, MaxCompressionRatio, RatioAllowance, limit)
	}
	r.t = t
	return nil
}

// Header returns the object's header (a copy).
func (r *Reader) Header() Header {
	h := r.h
	h.Families = slices.Clone(h.Families)
	return h
}

// Trailer returns the object's trailer (a copy). Its body checksums are
// verified only once the body was read to io.EOF or Verify returned nil.
func (r *Reader) Trailer() Trailer {
	t := r.t
	t.Labels = slices.Clone(t.Labels)
	t.Families = slices.Clone(t.Families)
	t.AccountChanges = maps.Clone(t.AccountChanges)
	return t
}

func (r *Reader) wrongKind(method string, want Kind) error {
	return newError(r.obj, 0, 0, ErrKind, "%s called on a %v, which holds no %v records", method, r.h.Kind, want)
}

func (r *Reader) cursorFor(method string, want Kind) (*cursor, error) {
	if r.h.Kind != want {
		return nil, r.wrongKind(method, want)
	}
	if r.closed {
		return nil, fmt.Errorf("%s: %s after Close", r.obj, method)
	}
	if r.cur == nil {
		r.cur = newCursor(r, false)
	}
	return r.cur, nil
}

// NextBatch returns the next batch of a segment. Data is freshly allocated
// and may be kept. At the end it returns io.EOF, but only after the body
// checksum, record count, uncompressed length and capture-time range all
// matched the trailer; any mismatch is returned instead, so a caller that
// sees io.EOF has read exactly what was written. Calling it on an export
// returns an error wrapping ErrKind.
func (r *Reader) NextBatch() (Batch, error) {
	c, err := r.cursorFor("NextBatch", KindSegment)
	if err != nil {
		return Batch{}, err
	}
	return c.nextBatch()
}

// NextEntry returns the next key of an export with the index of its family
// in Header().Families. key and value are freshly allocated and may be
// kept. Like NextBatch it returns io.EOF only after all checksums matched,
// and also each family's key count and digest. Calling it on a segment
// returns an error wrapping ErrKind.
func (r *Reader) NextEntry() (family int, key, value []byte, err error) {
	c, err := r.cursorFor("NextEntry", KindExport)
	if err != nil {
		return 0, nil, nil, err
	}
	return c.nextEntry()
}

// Verify reads the whole body from the start and checks everything that
// reading to io.EOF checks, without returning records (and so without
// allocating per record). It uses its own pass over the body: it may be
// called before, after or without NextBatch/NextEntry and does not move
// their position.
func (r *Reader) Verify() error {
	if r.closed {
		return fmt.Errorf("%s: Verify after Close", r.obj)
	}
	c := newCursor(r, true)
	defer c.close()
	for {
		var err error
		if r.h.Kind == KindSegment {
			_, err = c.nextBatch()
		} else {
			_, _, _, err = c.nextEntry()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Close releases the decoder. It does not close the underlying ReaderAt.
func (r *Reader) Close() error {
	if r.cur != nil {
		r.cur.close()
	}
	r.closed = true
	return nil
}

// bodySource reads the compressed body, hashes it, and remembers a storage
// error, so that a failed read is not reported as corruption after the
// decoder wrapped or replaced it.
type bodySource struct {
	r   io.Reader
	sum *xxhash.Digest
	n   int64
	err error
}

func (e *bodySource) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.sum.Write(p[:n])
	e.n += int64(n)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// cursor is one pass over the body.
type cursor struct {
	r       *Reader
	src     *bodySource
	dec     *zstd.Decoder
	br      *bufio.Reader
	hash    *xxhash.Digest
	n, rec  uint64 // uncompressed bytes and records consumed
	reuse   bool   // Verify: reuse buffers, records are not handed out
	err     error  // sticky
	eof     bool
	started bool
	fixed   [16]byte
	varint  [binary.MaxVarintLen64]byte

	prevSeq  uint64
	min, max int64

	fam      int
	havePrev bool
	prevKey  []byte
	kbuf     []byte
	vbuf     []byte
	digests  []*Digest
}

func newCursor(r *Reader, reuse bool) *cursor {
	c := &cursor{r: r, hash: xxhash.New(), reuse: reuse}
	if r.h.Kind == KindExport {
		c.digests = make([]*Digest, len(r.h.Families))
		for i := range c.digests {
			c.digests[i] = NewDigest()
		}
	}
	return c
}

// start opens the decoder lazily, so Open stays cheap for listing.
func (c *cursor) start() error {
	c.started = true
	body := io.NewSectionReader(c.r.ra, c.r.hdrEnd, c.r.bodyEnd-c.r.hdrEnd)
	c.src = &bodySource{r: body, sum: xxhash.New()}
	dec, err := zstd.NewReader(bufio.NewReaderSize(c.src, srcBufferSize),
		zstd.WithDecoderConcurrency(1),
		// Both bound the window: MaxWindow checks the window a frame
		// declares, MaxMemory the one a single-segment frame implies by
		// its content size. Neither limits the streamed output.
		zstd.WithDecoderMaxWindow(decoderMaxWindow),
		zstd.WithDecoderMaxMemory(decoderMaxWindow))
	if err != nil {
		return c.decodeErr(err)
	}
	c.dec = dec
	c.br = bufio.NewReaderSize(dec, outBufferSize)
	return nil
}

func (c *cursor) close() {
	if c.dec != nil {
		c.dec.Close()
		c.dec = nil
	}
	c.br = nil
}

func (c *cursor) fail(err error) error {
	c.err = err
	c.close()
	return err
}

// corrupt reports a problem found inside the body.
func (c *cursor) corrupt(format string, args ...any) error {
	r := c.r
	return c.fail(r.corrupt(r.hdrEnd, r.bodyEnd, "body (bytes %d..%d), record %d at uncompressed offset %d: %s",
		r.hdrEnd, r.bodyEnd, c.rec, c.n, fmt.Sprintf(format, args...)))
}

// corruptEnd reports a mismatch found at the end of the body.
func (c *cursor) corruptEnd(format string, args ...any) error {
	r := c.r
	return c.fail(r.corrupt(r.hdrEnd, r.bodyEnd, "body (bytes %d..%d): %s", r.hdrEnd, r.bodyEnd, fmt.Sprintf(format, args...)))
}

// decodeErr classifies an error from the decompressed stream.
func (c *cursor) decodeErr(err error) error {
	r := c.r
	if c.src != nil && c.src.err != nil {
		return c.fail(&Error{Object: r.obj, Start: r.hdrEnd, End: r.bodyEnd, Err: c.src.err,
			msg: fmt.Sprintf("%s: reading body at bytes %d..%d: %v", r.obj, r.hdrEnd, r.bodyEnd, c.src.err)})
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return c.fail(r.corrupt(r.hdrEnd, r.bodyEnd, "body (bytes %d..%d) ends after %d uncompressed bytes, but the trailer says %d: truncated or corrupt",
			r.hdrEnd, r.bodyEnd, c.n, r.t.UncompressedLen))
	}
	return c.fail(r.corrupt(r.hdrEnd, r.bodyEnd, "body (bytes %d..%d) does not decompress after %d uncompressed bytes: %v",
		r.hdrEnd, r.bodyEnd, c.n, err))
}

// ready returns the sticky state, starting the decoder on first use.
func (c *cursor) ready() error {
	if c.err != nil {
		return c.err
	}
	if c.eof {
		return io.EOF
	}
	if !c.started {
		return c.start()
	}
	return nil
}

func (c *cursor) remaining() uint64 { return c.r.t.UncompressedLen - c.n }

func (c *cursor) read(p []byte) error {
	if _, err := io.ReadFull(c.br, p); err != nil {
		return c.decodeErr(err)
	}
	c.hash.Write(p)
	c.n += uint64(len(p))
	return nil
}

func (c *cursor) readUvarint(what string) (uint64, error) {
	for i := range c.varint {
		b, err := c.br.ReadByte()
		if err != nil {
			return 0, c.decodeErr(err)
		}
		c.varint[i] = b
		if b < 0x80 {
			v, k := binary.Uvarint(c.varint[:i+1])
			if k <= 0 {
				return 0, c.corrupt("%s varint overflows 64 bits", what)
			}
			c.hash.Write(c.varint[:i+1])
			c.n += uint64(i + 1)
			if c.n > c.r.t.UncompressedLen {
				return 0, c.corrupt("%s crosses the end of the body (%d bytes per the trailer)", what, c.r.t.UncompressedLen)
			}
			return v, nil
		}
	}
	return 0, c.corrupt("%s varint is longer than %d bytes", what, binary.MaxVarintLen64)
}

// need checks that n more bytes are within the format's limit for what
// and fit in the body before anything is read or allocated for them.
func (c *cursor) need(n, limit uint64, what string) error {
	if n > limit {
		return c.corrupt("%s of %d bytes is longer than the format allows (%d bytes)", what, n, limit)
	}
	if n > c.remaining() || n > uint64(math.MaxInt) {
		return c.corrupt("%s of %d bytes crosses the end of the body (%d bytes left per the trailer)", what, n, c.remaining())
	}
	return nil
}

// readBytes appends n bytes to dst. Large records are read in steps, so a
// damaged length that passed the trailer bound still only allocates about
// as much as the decompressed stream really delivers.
func (c *cursor) readBytes(dst []byte, n uint64) ([]byte, error) {
	for n > 0 {
		step := int(min(n, readChunk))
		dst = slices.Grow(dst, step)
		start := len(dst)
		dst = dst[:start+step]
		if err := c.read(dst[start:]); err != nil {
			return nil, err
		}
		n -= uint64(step)
	}
	return dst, nil
}

func (c *cursor) nextBatch() (Batch, error) {
	if err := c.ready(); err != nil {
		return Batch{}, err
	}
	if c.n == c.r.t.UncompressedLen {
		return Batch{}, c.finish()
	}
	if err := c.need(16, 16, "batch header"); err != nil {
		return Batch{}, err
	}
	if err := c.read(c.fixed[:16]); err != nil {
		return Batch{}, err
	}
	b := Batch{
		Seq:           binary.LittleEndian.Uint64(c.fixed[0:8]),
		CaptureUnixMs: int64(binary.LittleEndian.Uint64(c.fixed[8:16])),
	}
	h := c.r.h
	switch {
	case b.Seq < h.FirstSeq || b.Seq > h.LastSeq:
		return Batch{}, c.corrupt("batch seq %d is outside the header's range %d..%d", b.Seq, h.FirstSeq, h.LastSeq)
	case c.rec > 0 && b.Seq <= c.prevSeq:
		return Batch{}, c.corrupt("batch seq %d does not follow previous batch seq %d", b.Seq, c.prevSeq)
	}
	n, err := c.readUvarint("batch length")
	if err != nil {
		return Batch{}, err
	}
	if n < minBatchLen {
		return Batch{}, c.corrupt("batch seq %d is %d bytes, shorter than the %d-byte WriteBatch header", b.Seq, n, minBatchLen)
	}
	if err := c.need(n, MaxBatchLen, "batch"); err != nil {
		return Batch{}, err
	}
	var dst []byte
	if c.reuse {
		dst = c.vbuf[:0]
	}
	if b.Data, err = c.readBytes(dst, n); err != nil {
		return Batch{}, err
	}
	if c.reuse {
		c.vbuf = b.Data
	}
	if c.rec == 0 || b.CaptureUnixMs < c.min {
		c.min = b.CaptureUnixMs
	}
	if c.rec == 0 || b.CaptureUnixMs > c.max {
		c.max = b.CaptureUnixMs
	}
	c.prevSeq = b.Seq
	c.rec++
	return b, nil
}

func (c *cursor) nextEntry() (int, []byte, []byte, error) {
	if err := c.ready(); err != nil {
		return 0, nil, nil, err
	}
	if c.n == c.r.t.UncompressedLen {
		return 0, nil, nil, c.finish()
	}
	fams := c.r.h.Families
	f, err := c.readUvarint("family index")
	if err != nil {
		return 0, nil, nil, err
	}
	switch {
	case f >= uint64(len(fams)):
		return 0, nil, nil, c.corrupt("family index %d is out of range (header has %d families)", f, len(fams))
	case int(f) < c.fam:
		return 0, nil, nil, c.corrupt("family %q (index %d) comes after family %q (index %d)", fams[f].Name, f, fams[c.fam].Name, c.fam)
	}
	fam := int(f)
	klen, err := c.readUvarint("key length")
	if err != nil {
		return 0, nil, nil, err
	}
	if err := c.need(klen, MaxKeyLen, "key"); err != nil {
		return 0, nil, nil, err
	}
	if c.kbuf, err = c.readBytes(c.kbuf[:0], klen); err != nil {
		return 0, nil, nil, err
	}
	if fam == c.fam && c.havePrev && bytes.Compare(c.kbuf, c.prevKey) <= 0 {
		return 0, nil, nil, c.corrupt("family %q: key %x does not follow previous key %x", fams[fam].Name, c.kbuf, c.prevKey)
	}
	vlen, err := c.readUvarint("value length")
	if err != nil {
		return 0, nil, nil, err
	}
	if err := c.need(vlen, MaxValueLen, "value"); err != nil {
		return 0, nil, nil, err
	}
	var key, value []byte
	if c.reuse {
		if c.vbuf, err = c.readBytes(c.vbuf[:0], vlen); err != nil {
			return 0, nil, nil, err
		}
		key, value = c.kbuf, c.vbuf
	} else {
		// One allocation holds both; the key is capped so appending to it
		// cannot overwrite the value.
		out := make([]byte, klen, klen+min(vlen, readChunk))
		copy(out, c.kbuf)
		if out, err = c.readBytes(out, vlen); err != nil {
			return 0, nil, nil, err
		}
		key, value = out[:klen:klen], out[klen:]
	}
	c.digests[fam].Add(key, value)
	c.fam = fam
	c.havePrev = true
	c.prevKey, c.kbuf = c.kbuf, c.prevKey
	c.rec++
	return fam, key, value, nil
}

// finish runs at the end of the uncompressed body and returns io.EOF only
// if everything the trailer promises holds.
func (c *cursor) finish() error {
	r := c.r
	if _, err := c.br.ReadByte(); err == nil {
		return c.corruptEnd("the body holds more than the %d uncompressed bytes the trailer says", r.t.UncompressedLen)
	} else if err != io.EOF {
		return c.decodeErr(err)
	}
	if got := c.hash.Sum64(); got != r.t.BodyChecksum {
		return c.fail(r.corrupt(r.hdrEnd, r.bodyEnd, "body checksum mismatch over bytes %d..%d (want %016x, got %016x)",
			r.hdrEnd, r.bodyEnd, r.t.BodyChecksum, got))
	}
	// The decoder stopped at the end of the zstd data; anything after it
	// would have been an error. Hash what read-ahead left unread, if any.
	if _, err := io.Copy(io.Discard, c.src); err != nil || c.src.err != nil {
		return c.decodeErr(io.ErrUnexpectedEOF)
	}
	if got := c.src.sum.Sum64(); got != r.t.CompressedChecksum || c.src.n != r.bodyEnd-r.hdrEnd {
		return c.fail(r.corrupt(r.hdrEnd, r.bodyEnd, "compressed body checksum mismatch over bytes %d..%d (want %016x, got %016x)",
			r.hdrEnd, r.bodyEnd, r.t.CompressedChecksum, got))
	}
	if c.rec != r.t.Records {
		return c.corruptEnd("the body holds %d records, the trailer says %d", c.rec, r.t.Records)
	}
	switch r.h.Kind {
	case KindSegment:
		if c.min != r.t.MinCaptureUnixMs || c.max != r.t.MaxCaptureUnixMs {
			return c.corruptEnd("batches were captured at %d..%d (unix ms), the trailer says %d..%d",
				c.min, c.max, r.t.MinCaptureUnixMs, r.t.MaxCaptureUnixMs)
		}
	case KindExport:
		for i, d := range c.digests {
			fs := r.t.Families[i]
			if d.Keys() != fs.Keys {
				return c.corruptEnd("family %q has %d keys, the trailer says %d", fs.Name, d.Keys(), fs.Keys)
			}
			if got := d.Sum(); got != fs.Digest {
				return c.corruptEnd("family %q digest mismatch (want %s, got %s)", fs.Name, fs.Digest, got)
			}
		}
	}
	c.eof = true
	c.close()
	return io.EOF
}
