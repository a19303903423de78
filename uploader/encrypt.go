// Client-side encryption.
//
// [Encrypted] wraps a Replica so that every object — segments, exports,
// generation.json, lease.json, anything written through it — is encrypted
// with AES-256-GCM before it leaves the machine and authenticated and
// decrypted on the way back. The local spool stays plaintext: it never
// leaves the machine, and the shipper encrypts while it uploads.
//
// Why whole objects and not the `encryption id` field of the segment
// header (formats.md): that field can only cover segment and export
// bodies, leaving generation.json and the lease (source identity, hosts,
// family names) in the clear and needing a second scheme for them; and it
// would tie encryption to the segment format, so every reader of headers
// and trailers in place would need the key threaded through. Encrypting
// below the Replica interface covers every object kind, ranged reads, and
// conditional writes uniformly, and no code above it changes. The header's
// field stays 0.
//
// # Object format (version 1)
//
//	offset  size  field
//	0       8     magic "TAILENC1"
//	8       8     key id: the first 8 bytes of SHA-256("tailer-backup key id v1" || key)
//	16      4     chunk size, big-endian uint32: 65536 in version 1
//	20      24    salt: random, new for every object written
//	44      ...   chunks: AES-256-GCM(plaintext chunk) || 16-byte tag
//
// Every chunk holds chunk-size bytes of plaintext except the last, which
// holds 0 to chunk-size bytes (an empty object is one empty chunk, so even
// it is authenticated). A plaintext of P bytes therefore takes
// 44 + P + 16·max(1, ⌈P/65536⌉) bytes, which lets List report plaintext
// sizes (callers compute footer offsets from them) without reading
// anything, and lets a ranged read fetch only the whole chunks covering the
// range.
//
//   - Key: each object has its own AES-256 key, HKDF-SHA256(key, salt,
//     "tailer-backup object key v1"). With a fresh key per object the GCM
//     nonce can simply be 8 zero bytes || the big-endian uint32 chunk
//     index, and there is no birthday bound on random nonces to worry
//     about over years of per-second segments under one key.
//   - Additional data of chunk i: the 44-byte header, one byte (1 for the
//     last chunk, 0 otherwise) and the object's key (relative to the
//     replica prefix). So a chunk cannot be moved within an object, an
//     object truncated at a chunk boundary or extended is detected (the
//     new last chunk was not sealed as last), the header (chunk size, key
//     id) cannot be altered, and an object cannot be passed off under
//     another name. Objects are never renamed or copied server-side.
//   - The key id makes a wrong key an error that says so, rather than
//     "corrupt". It is a hash with its own domain string, so it reveals
//     nothing usable about the key.
//
// A replica read without a key goes through [Unencrypted], which turns an
// encrypted object into an error naming the flag to use, instead of
// letting the format parsers call ciphertext corrupt.

package uploader

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

const (
	encMagic     = "TAILENC1"
	encHeaderLen = 8 + 8 + 4 + 24
	encChunk     = 64 << 10
	encTag       = 16
	encSaltLen   = 24
	encKeyIDInfo = "tailer-backup key id v1"
	encObjInfo   = "tailer-backup object key v1"

	// KeyLen is the length of an encryption key: AES-256.
	KeyLen = 32

	// keyHint tells the operator where a key comes from, in errors.
	keyHint = "--encryption-key-file FILE or TAILER_ENCRYPTION_KEY"
)

var (
	// ErrWrongKey is wrapped when an object was encrypted with another key.
	ErrWrongKey = errors.New("encrypted with another key")
	// ErrEncrypted is wrapped when an encrypted object is read without a key.
	ErrEncrypted = errors.New("object is encrypted and no key was given")
	// ErrNotEncrypted is wrapped when a replica opened with a key holds a
	// plaintext object: accepting it would let anyone with write access to
	// the bucket slip in unauthenticated data.
	ErrNotEncrypted = errors.New("object is not encrypted")
	// ErrTampered is wrapped when a chunk fails authentication: the object
	// was truncated, damaged or modified. Like a corrupt segment it will
	// not go away by retrying, so restore routes around it as damage.
	ErrTampered = errors.New("corrupt or tampered with")
)

// ParseKey reads an encryption key: exactly 32 raw bytes, or the base64
// (standard or URL alphabet, padded or not) of 32 bytes with surrounding
// whitespace. Errors never include the key material.
func ParseKey(data []byte) ([]byte, error) {
	if len(data) == KeyLen {
		return bytes.Clone(data), nil
	}
	text := string(bytes.TrimSpace(data))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(text); err == nil {
			if len(k) != KeyLen {
				return nil, fmt.Errorf("the key decodes to %d bytes, want %d (AES-256): generate one with 'head -c 32 /dev/urandom | base64 > key'", len(k), KeyLen)
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("the key is neither %d raw bytes nor base64 of %d bytes (%d bytes given): generate one with 'head -c 32 /dev/urandom | base64 > key'", KeyLen, KeyLen, len(data))
}

// KeyID is the identifier stored in every object encrypted with key, in
// hex: safe to print, and what the wrong-key error shows.
func KeyID(key []byte) string {
	id := keyID(key)
	return fmt.Sprintf("%x", id[:])
}

func keyID(key []byte) [8]byte {
	h := sha256.New()
	h.Write([]byte(encKeyIDInfo))
	h.Write(key)
	var id [8]byte
	copy(id[:], h.Sum(nil))
	return id
}

// cipherSize is the stored size of a plaintext of p bytes.
func cipherSize(p int64) int64 {
	chunks := max(1, (p+encChunk-1)/encChunk)
	return encHeaderLen + p + chunks*encTag
}

// plainSize inverts cipherSize; ok is false for a size no plaintext
// encrypts to (a truncated or foreign object).
func plainSize(c int64) (p int64, ok bool) {
	body := c - encHeaderLen
	if body < encTag {
		return 0, false
	}
	const full = encChunk + encTag
	chunks := (body + full - 1) / full
	last := body - (chunks-1)*full
	if last < encTag || (last == encTag && chunks > 1) {
		return 0, false
	}
	return body - chunks*encTag, true
}

// encrypted is the Replica Encrypted returns.
type encrypted struct {
	r     Replica
	key   []byte
	keyID [8]byte

	mu sync.Mutex
	// sizes caches stored (ciphertext) sizes seen by List or Put, so a
	// ranged read, which must know where the last chunk ends, costs no
	// extra request after the LIST every caller does first. A stored size
	// depends only on the plaintext size, so it stays right across the
	// idempotent re-uploads of immutable objects.
	sizes map[string]int64
	// headers caches object headers (they hold the salt), so the reads of
	// a segment's footer and trailer cost one request each. A header
	// changes when an object is uploaded again, so a chunk that fails to
	// authenticate with a cached header is retried once with fresh ones.
	headers map[string]*objHeader
}

// maxCached bounds each cache; when full it starts over (the caches are
// hints, not state).
const maxCached = 1 << 18

// Encrypted wraps r so that every object is encrypted with key (32 bytes,
// AES-256-GCM) before it is stored and decrypted and authenticated when
// read; see the package comment on encrypt.go for the format. The result
// also supports ReadRange (and so ObjectReaderAt) and GetVersioned/PutIf
// when r does. List reports plaintext sizes.
func Encrypted(r Replica, key []byte) (Replica, error) {
	if len(key) != KeyLen {
		return nil, fmt.Errorf("encryption key of %d bytes: want %d (AES-256)", len(key), KeyLen)
	}
	return &encrypted{r: r, key: bytes.Clone(key), keyID: keyID(key),
		sizes: map[string]int64{}, headers: map[string]*objHeader{}}, nil
}

// String implements Replica: the wrapped replica's URL, so errors and
// metrics name the bucket the operator knows.
func (e *encrypted) String() string { return e.r.String() }

// Identity is the wrapped replica's: encryption happens on upload, the
// spool holds plaintext, so it stays keyed by the bucket alone.
func (e *encrypted) Identity() string { return IdentityOf(e.r) }

// objHeader is a parsed object header and the AEAD for its chunks.
type objHeader struct {
	raw  [encHeaderLen]byte
	aead cipher.AEAD
}

func (e *encrypted) newHeader() (*objHeader, error) {
	h := &objHeader{}
	copy(h.raw[:8], encMagic)
	copy(h.raw[8:16], e.keyID[:])
	binary.BigEndian.PutUint32(h.raw[16:20], encChunk)
	if _, err := rand.Read(h.raw[20:]); err != nil {
		return nil, fmt.Errorf("random salt: %w", err)
	}
	return h, e.initAEAD(h)
}

func (e *encrypted) initAEAD(h *objHeader) error {
	k, err := hkdf.Key(sha256.New, e.key, h.raw[20:], encObjInfo, KeyLen)
	if err != nil {
		return fmt.Errorf("derive object key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return fmt.Errorf("AES: %w", err)
	}
	h.aead, err = cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("GCM: %w", err)
	}
	return nil
}

// parseHeader checks b (the first bytes of the object under key, up to
// encHeaderLen of them) and returns its header.
func (e *encrypted) parseHeader(key string, b []byte) (*objHeader, error) {
	n := min(len(b), len(encMagic))
	if string(b[:n]) != encMagic[:n] || len(b) == 0 {
		return nil, fmt.Errorf("%s: object %s is not encrypted (it was written without a key), but an encryption key was given: encrypted backups need a replica prefix of their own; to read this one, drop %s: %w",
			e.r, key, keyHint, ErrNotEncrypted)
	}
	if len(b) < encHeaderLen {
		return nil, fmt.Errorf("%s: object %s is %d bytes, shorter than the %d-byte encryption header: truncated: %w", e.r, key, len(b), encHeaderLen, ErrTampered)
	}
	h := &objHeader{}
	copy(h.raw[:], b)
	if !bytes.Equal(h.raw[8:16], e.keyID[:]) {
		return nil, fmt.Errorf("%s: object %s was encrypted with another key (key id %x; the given key's id is %x): check --encryption-key-file (or TAILER_ENCRYPTION_KEY): %w",
			e.r, key, h.raw[8:16], e.keyID, ErrWrongKey)
	}
	if cs := binary.BigEndian.Uint32(h.raw[16:20]); cs != encChunk {
		return nil, fmt.Errorf("%s: object %s has encryption chunk size %d; this tailer reads %d (format TAILENC1): damaged, or written by a newer tailer: %w", e.r, key, cs, encChunk, ErrTampered)
	}
	return h, e.initAEAD(h)
}

func chunkNonce(i uint32) []byte {
	var n [12]byte
	binary.BigEndian.PutUint32(n[8:], i)
	return n[:]
}

// aad is the additional data of a chunk: header, last flag, object key.
func chunkAAD(buf []byte, h *objHeader, last bool, key string) []byte {
	buf = append(buf[:0], h.raw[:]...)
	if last {
		buf = append(buf, 1)
	} else {
		buf = append(buf, 0)
	}
	return append(buf, key...)
}

func (e *encrypted) tampered(key string, chunk int64, why string) error {
	if why != "" {
		why = " (" + why + ")"
	}
	return fmt.Errorf("%s: object %s is corrupt or was tampered with at chunk %d%s: %w", e.r, key, chunk, why, ErrTampered)
}

// Put implements Replica. size is the plaintext size; the wrapped replica
// gets the exact stored size, so its multipart and short-source checks
// keep working.
func (e *encrypted) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	h, err := e.newHeader()
	if err != nil {
		return fmt.Errorf("%s: put %s: %w", e.r, key, err)
	}
	stored := int64(-1)
	if size >= 0 {
		if (size+encChunk-1)/encChunk > math.MaxUint32 {
			return fmt.Errorf("%s: put %s: %d bytes is too large to encrypt", e.r, key, size)
		}
		stored = cipherSize(size)
		// Seal exactly size bytes (as the backends store exactly size),
		// and fail on a short source instead of sealing a short object.
		r = &exactReader{r: r, n: size}
	}
	e.forget(key)
	err = e.r.Put(ctx, key, newSealer(h, key, r), stored)
	if err == nil && stored >= 0 {
		e.remember(key, stored)
	}
	return err
}

// sealer encrypts a plaintext stream into the object format as it is read.
type sealer struct {
	h     *objHeader
	key   string
	src   *bufio.Reader
	plain []byte
	aad   []byte
	out   []byte // pending output
	pos   int
	idx   uint64
	done  bool
	err   error
}

func newSealer(h *objHeader, key string, src io.Reader) *sealer {
	s := &sealer{h: h, key: key, src: bufio.NewReaderSize(src, encChunk+1), plain: make([]byte, encChunk)}
	s.out = append(make([]byte, 0, encChunk+encTag), h.raw[:]...)
	return s
}

func (s *sealer) Read(p []byte) (int, error) {
	for s.pos == len(s.out) {
		if s.err != nil {
			return 0, s.err
		}
		if s.done {
			return 0, io.EOF
		}
		s.err = s.next()
	}
	n := copy(p, s.out[s.pos:])
	s.pos += n
	return n, nil
}

// next seals the next chunk into s.out. A chunk is the last one when the
// source ends inside it or right after it (a one-byte peek tells).
func (s *sealer) next() error {
	n, err := io.ReadFull(s.src, s.plain)
	last := false
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF: // identity: a wrapped short-source error must fail
		last = true
	case err != nil:
		return err
	default:
		if _, perr := s.src.Peek(1); perr == io.EOF {
			last = true
		} else if perr != nil {
			return perr
		}
	}
	if s.idx > math.MaxUint32 {
		return fmt.Errorf("object %s: too many chunks to encrypt", s.key)
	}
	s.aad = chunkAAD(s.aad, s.h, last, s.key)
	s.out = s.h.aead.Seal(s.out[:0], chunkNonce(uint32(s.idx)), s.plain[:n], s.aad)
	s.pos = 0
	s.idx++
	s.done = last
	return nil
}

// Get implements Replica. The header is read (and the key checked) before
// Get returns; each chunk is authenticated before any of its bytes are
// handed out, so a reader never sees unauthenticated plaintext, and a
// truncated object fails at its end instead of ending early.
func (e *encrypted) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := e.r.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	o, err := e.newOpener(key, rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return o, nil
}

// opener decrypts the object format as it is read.
type opener struct {
	e      *encrypted
	key    string
	h      *objHeader
	src    *bufio.Reader
	closer io.Closer
	buf    []byte
	aad    []byte
	out    []byte
	pos    int
	idx    int64
	done   bool
	err    error
}

func (e *encrypted) newOpener(key string, rc io.ReadCloser) (*opener, error) {
	src := bufio.NewReaderSize(rc, encChunk+encTag+1)
	hb := make([]byte, encHeaderLen)
	n, err := io.ReadFull(src, hb)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("%s: get %s: %w", e.r, key, err)
	}
	h, err := e.parseHeader(key, hb[:n])
	if err != nil {
		return nil, err
	}
	return &opener{e: e, key: key, h: h, src: src, closer: rc, buf: make([]byte, encChunk+encTag)}, nil
}

func (o *opener) Close() error { return o.closer.Close() }

func (o *opener) Read(p []byte) (int, error) {
	for o.pos == len(o.out) {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			return 0, io.EOF
		}
		o.err = o.next()
	}
	n := copy(p, o.out[o.pos:])
	o.pos += n
	return n, nil
}

func (o *opener) next() error {
	n, err := io.ReadFull(o.src, o.buf)
	last := false
	switch {
	case err == io.EOF:
		// Only possible for the first chunk: after a full chunk the peek
		// below saw more bytes.
		return o.e.tampered(o.key, o.idx, "the object ends after its header: truncated")
	case err == io.ErrUnexpectedEOF:
		last = true
	case err != nil:
		return fmt.Errorf("%s: get %s: chunk %d: %w", o.e.r, o.key, o.idx, err)
	default:
		if _, perr := o.src.Peek(1); perr == io.EOF {
			last = true
		} else if perr != nil {
			return fmt.Errorf("%s: get %s: chunk %d: %w", o.e.r, o.key, o.idx, perr)
		}
	}
	if n < encTag {
		return o.e.tampered(o.key, o.idx, "the object ends inside a chunk: truncated")
	}
	if o.idx > math.MaxUint32 {
		return o.e.tampered(o.key, o.idx, "too many chunks")
	}
	o.aad = chunkAAD(o.aad, o.h, last, o.key)
	out, err := o.h.aead.Open(o.out[:0], chunkNonce(uint32(o.idx)), o.buf[:n], o.aad)
	if err != nil {
		return o.e.tampered(o.key, o.idx, "")
	}
	o.out, o.pos = out, 0
	o.idx++
	o.done = last
	return nil
}

// open decrypts a whole object held in memory (conditional reads).
func (e *encrypted) open(key string, data []byte) ([]byte, error) {
	o, err := e.newOpener(key, io.NopCloser(bytes.NewReader(data)))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(o)
}

// List implements Replica, with plaintext sizes. An object whose stored
// size no plaintext encrypts to (truncated, or not encrypted) keeps its
// stored size: reading it reports what is wrong.
func (e *encrypted) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	objs, err := e.r.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return e.plainSizes(objs), nil
}

// ListAfter implements AfterLister (keys are not encrypted).
func (e *encrypted) ListAfter(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	objs, err := ListAfter(ctx, e.r, prefix, startAfter)
	if err != nil {
		return nil, err
	}
	return e.plainSizes(objs), nil
}

// plainSizes remembers the stored sizes of listed objects and reports
// their plaintext sizes.
func (e *encrypted) plainSizes(objs []ObjectInfo) []ObjectInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range objs {
		e.rememberLocked(objs[i].Key, objs[i].Size)
		if p, ok := plainSize(objs[i].Size); ok {
			objs[i].Size = p
		}
	}
	return objs
}

// Delete implements Replica.
func (e *encrypted) Delete(ctx context.Context, key string) error {
	e.forget(key)
	return e.r.Delete(ctx, key)
}

func (e *encrypted) remember(key string, stored int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rememberLocked(key, stored)
}

func (e *encrypted) rememberLocked(key string, stored int64) {
	if len(e.sizes) >= maxCached {
		clear(e.sizes)
	}
	e.sizes[key] = stored
}

func (e *encrypted) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.sizes, key)
	delete(e.headers, key)
}

// storedSize returns the stored size of key: from the cache, else from a
// LIST of the key itself.
func (e *encrypted) storedSize(ctx context.Context, key string) (int64, error) {
	e.mu.Lock()
	n, ok := e.sizes[key]
	e.mu.Unlock()
	if ok {
		return n, nil
	}
	objs, err := e.r.List(ctx, key)
	if err != nil {
		return 0, err
	}
	for _, o := range objs {
		if o.Key == key {
			e.remember(key, o.Size)
			return o.Size, nil
		}
	}
	return 0, fmt.Errorf("%s: read %s: %w", e.r, key, ErrNotFound)
}

// readRange implements ranged reads: it fetches the whole chunks covering
// [off, off+n) of the plaintext, in one request once the object's header
// and stored size are known, and authenticates each.
func (e *encrypted) readRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	rr, ok := e.r.(rangeReader)
	if !ok {
		return nil, fmt.Errorf("%s: ranged reads are not supported", e.r)
	}
	b, err := e.readRangeOnce(ctx, rr, key, off, n, true)
	if errors.Is(err, ErrTampered) {
		// Maybe only our cached size or header is stale (the object was
		// uploaded again): start over from the replica before calling it
		// damaged.
		e.forget(key)
		b, err = e.readRangeOnce(ctx, rr, key, off, n, false)
	}
	return b, err
}

func (e *encrypted) readRangeOnce(ctx context.Context, rr rangeReader, key string, off, n int64, cached bool) ([]byte, error) {
	stored, err := e.storedSize(ctx, key)
	if err != nil {
		return nil, err
	}
	var h *objHeader
	if cached {
		e.mu.Lock()
		h = e.headers[key]
		e.mu.Unlock()
	}
	readHeader := func() (*objHeader, error) {
		var hb []byte
		if stored > 0 {
			if hb, err = rr.readRange(ctx, key, 0, min(encHeaderLen, stored)); err != nil {
				return nil, err
			}
		}
		return e.parseHeader(key, hb)
	}
	psize, sizeOK := plainSize(stored)
	lastChunk := max(0, (psize+encChunk-1)/encChunk-1)
	if !sizeOK || off+n > psize {
		// A plaintext object or a wrong key is reported as such first.
		if h == nil {
			if h, err = readHeader(); err != nil {
				return nil, err
			}
		}
		if !sizeOK {
			return nil, e.tampered(key, lastChunk, fmt.Sprintf("its size of %d bytes is no whole number of chunks: truncated", stored))
		}
		return nil, fmt.Errorf("%s: read %s bytes %d..%d: the object has %d bytes: %w", e.r, key, off, off+n, psize, io.ErrUnexpectedEOF)
	}
	first, endChunk := off/encChunk, (off+n-1)/encChunk
	cStart := encHeaderLen + first*(encChunk+encTag)
	cEnd := min(encHeaderLen+(endChunk+1)*(encChunk+encTag), stored)
	withHeader := h == nil && first == 0
	if withHeader {
		cStart = 0 // the header comes with the first chunk: one request
	} else if h == nil {
		if h, err = readHeader(); err != nil {
			return nil, err
		}
	}
	data, err := rr.readRange(ctx, key, cStart, cEnd-cStart)
	if err != nil {
		return nil, err
	}
	if withHeader {
		if h, err = e.parseHeader(key, data[:encHeaderLen]); err != nil {
			return nil, err
		}
		data = data[encHeaderLen:]
	}
	e.mu.Lock()
	if len(e.headers) >= maxCached {
		clear(e.headers)
	}
	e.headers[key] = h
	e.mu.Unlock()

	out := make([]byte, 0, (endChunk-first+1)*encChunk)
	var aad []byte
	for i := first; i <= endChunk; i++ {
		clen := min(int64(len(data)), encChunk+encTag)
		if clen < encTag || i > math.MaxUint32 {
			return nil, e.tampered(key, i, "truncated")
		}
		aad = chunkAAD(aad, h, i == lastChunk, key)
		if out, err = h.aead.Open(out, chunkNonce(uint32(i)), data[:clen], aad); err != nil {
			return nil, e.tampered(key, i, "")
		}
		data = data[clen:]
	}
	lo := off - first*encChunk
	return out[lo : lo+n], nil
}

// getVersioned implements conditional reads (the lease): the version is
// the stored object's, which is what putIf compares.
func (e *encrypted) getVersioned(ctx context.Context, key string) ([]byte, string, error) {
	c, ok := e.r.(conditional)
	if !ok {
		return nil, "", fmt.Errorf("%s: conditional writes are not supported", e.r)
	}
	data, ver, err := c.getVersioned(ctx, key)
	if err != nil {
		return nil, "", err
	}
	plain, err := e.open(key, data)
	if err != nil {
		return nil, "", err
	}
	return plain, ver, nil
}

// putIf implements conditional writes, sealing data first.
func (e *encrypted) putIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	c, ok := e.r.(conditional)
	if !ok {
		return "", fmt.Errorf("%s: conditional writes are not supported", e.r)
	}
	h, err := e.newHeader()
	if err != nil {
		return "", fmt.Errorf("%s: put %s: %w", e.r, key, err)
	}
	sealed, err := io.ReadAll(newSealer(h, key, bytes.NewReader(data)))
	if err != nil {
		return "", fmt.Errorf("%s: put %s: %w", e.r, key, err)
	}
	e.forget(key)
	return c.putIf(ctx, key, sealed, ifVersion)
}

// Unencrypted wraps a replica opened without an encryption key: it reads
// and writes plaintext unchanged, but an object that starts with the
// encryption magic is reported as encrypted, naming the flag that takes
// the key, rather than handed to the format parsers (which would call it
// corrupt). Objects read in place are checked by their first bytes, which
// every reader of tailer's formats reads first.
func Unencrypted(r Replica) Replica { return &unencrypted{r} }

type unencrypted struct{ r Replica }

func (u *unencrypted) String() string { return u.r.String() }

// Identity is the wrapped replica's (see encrypted.Identity).
func (u *unencrypted) Identity() string { return IdentityOf(u.r) }
func (u *unencrypted) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return u.r.Put(ctx, key, r, size)
}
func (u *unencrypted) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	return u.r.List(ctx, prefix)
}
func (u *unencrypted) ListAfter(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	return ListAfter(ctx, u.r, prefix, startAfter)
}
func (u *unencrypted) Delete(ctx context.Context, key string) error { return u.r.Delete(ctx, key) }

func (u *unencrypted) check(key string, b []byte) error {
	if bytes.HasPrefix(b, []byte(encMagic)) {
		return fmt.Errorf("%s: object %s is encrypted: this replica was written with client-side encryption; give its key with %s: %w", u.r, key, keyHint, ErrEncrypted)
	}
	return nil
}

func (u *unencrypted) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := u.r.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(rc)
	head, err := br.Peek(len(encMagic))
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		rc.Close()
		return nil, fmt.Errorf("%s: get %s: %w", u.r, key, err)
	}
	if err := u.check(key, head); err != nil {
		rc.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{br, rc}, nil
}

func (u *unencrypted) readRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	rr, ok := u.r.(rangeReader)
	if !ok {
		return nil, fmt.Errorf("%s: ranged reads are not supported", u.r)
	}
	b, err := rr.readRange(ctx, key, off, n)
	if err == nil && off == 0 {
		err = u.check(key, b)
	}
	return b, err
}

func (u *unencrypted) getVersioned(ctx context.Context, key string) ([]byte, string, error) {
	c, ok := u.r.(conditional)
	if !ok {
		return nil, "", fmt.Errorf("%s: conditional writes are not supported", u.r)
	}
	b, v, err := c.getVersioned(ctx, key)
	if err == nil {
		err = u.check(key, b)
	}
	return b, v, err
}

func (u *unencrypted) putIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	c, ok := u.r.(conditional)
	if !ok {
		return "", fmt.Errorf("%s: conditional writes are not supported", u.r)
	}
	return c.putIf(ctx, key, data, ifVersion)
}
