// Client-side encryption.
//
// [Encrypted] wraps a Replica so that every object — segments, exports,
// generation.json, lease.json, anything written through it — is encrypted
// with AES-256-GCM before it leaves the machine and authenticated and
// decrypted on the way back. The local spool stays plaintext: it never
// leaves the machine, and the shipper encrypts while it uploads.
//
// Why whole objects and not the `encryption id` field of the segment
// header (segment/doc.go): that field can only cover segment and export
// bodies, leaving generation.json and the lease (source identity, hosts,
// family names) in the clear and needing a second scheme for them; and it
// would tie encryption to the segment format, so every reader of headers
// and trailers in place would need the key threaded through. Encrypting
// below the Replica interface covers every object kind, ranged reads, and
// conditional writes uniformly, and no code above it changes. The header's
// field stays 0.
//
// # Object format (version 2)
//
//	offset  size  field
//	0       8     magic "TAILENC2"
//	8       8     key id: 4 random bytes R || HKDF-SHA256(master, R, "tailer-backup key id v2"), 4 bytes
//	16      4     chunk size, big-endian uint32: 65536
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
//   - Master key: a key given as 32 random bytes (base64) is the master
//     key as it is; a passphrase is stretched into one with Argon2id, with
//     the salt and cost parameters of the replica's keys.json (keys.go).
//   - Object key: each object has its own AES-256 key,
//     HKDF-SHA256(master, salt, "tailer-backup object key v2"). With a
//     fresh key per object the GCM nonce can simply be 8 zero bytes || the
//     big-endian uint32 chunk index, and there is no birthday bound on
//     random nonces to worry about over years of per-second segments.
//   - Additional data of chunk i: the 44-byte header, one byte (1 for the
//     last chunk, 0 otherwise) and the object's key (relative to the
//     replica prefix). So a chunk cannot be moved within an object, an
//     object truncated at a chunk boundary or extended is detected (the
//     new last chunk was not sealed as last), the header (chunk size, key
//     id) cannot be altered, and an object cannot be passed off under
//     another name. Objects are never renamed or copied server-side.
//   - Key id: lets a reader holding several keys (rotation: the first
//     writes, all read) pick the one an object needs, and makes a wrong
//     key an error that says so rather than "corrupt". Its random half
//     makes it differ in every object. It does not depend on the salt, so
//     damage there is reported as tampering, as a damaged chunk is; a
//     damaged key id reads as another key. A wrong key matches an id by
//     chance once in 2³²: its chunks then fail as tampered.
//
// Version 1 ("TAILENC1") is the same but for its key id, the first 8
// bytes of SHA-256("tailer-backup key id v1" || key), the object key's
// info string "tailer-backup object key v1", and raw keys only. It is
// still read, never written: old backups restore with their key.
//
// # Threat model
//
// Someone who can read the bucket learns object names (generation ids,
// sequence ranges, times), exact plaintext sizes and when objects were
// written, and keys.json (salt and KDF cost: public by design). Not the
// contents. With a random key, guessing it is hopeless. With a passphrase,
// any object lets them test a guess offline — through its key id or just
// as well by trying to open its first chunk — at the cost of one Argon2id
// derivation (64 MiB, 3 passes) per guess and replica, with no tables
// computed in advance (the salt); so a passphrase must be strong, and a
// random key is better. Version 2 key ids are keyed hashes of a random
// value in each object: they do not tell which objects, or which
// replicas, share a key, and cost no less to test than the ciphertext. A
// version 1 id was a plain hash of the key, the same in every object: it
// linked objects and replicas sharing a key, and a weak key (a passphrase
// taken for 32 raw bytes) fell to one cheap hash per guess, as it would
// to HKDF and the first chunk; taking such keys was the flaw, and they
// are refused now. Version 1 objects written with a random key need no
// re-encryption.
//
// Someone who can also write can delete objects, or replace one with an
// older version written under the same name (a generation.json or the
// lease rolled back: not detected), or replace or delete keys.json (the
// passphrase then opens none of its objects: a denial of service, like
// deleting them all; its KDF cost cannot be lowered below the floor a
// reader enforces, so no later write is weakened). They cannot forge,
// alter, truncate, reorder or rename content without the key: each is
// reported as tampering.
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
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/tailer-backup/tailer/internal/setting"
)

const (
	encMagic       = "TAILENC2" // what is written
	encMagicV1     = "TAILENC1" // still read
	encMagicPrefix = "TAILENC"
	encHeaderLen   = 8 + 8 + 4 + 24
	encChunk       = 64 << 10
	encTag         = 16
	encSaltLen     = 24
	encKeyIDInfoV1 = "tailer-backup key id v1"
	encObjInfoV1   = "tailer-backup object key v1"
	encKeyIDInfo   = "tailer-backup key id v2"
	encObjInfo     = "tailer-backup object key v2"

	// KeyLen is the length of an encryption key: AES-256.
	KeyLen = 32
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

// keyIDV1 is a version 1 object's key id.
func keyIDV1(key []byte) [8]byte {
	h := sha256.New()
	h.Write([]byte(encKeyIDInfoV1))
	h.Write(key)
	var id [8]byte
	copy(id[:], h.Sum(nil))
	return id
}

// keyIDV2 is a version 2 object's key id: its own random first half
// (idSalt) and a keyed hash of it, so it is new in every object and says
// nothing about the key to whoever lacks it.
func keyIDV2(master []byte, idSalt [4]byte) ([8]byte, error) {
	var id [8]byte
	b, err := hkdf.Key(sha256.New, master, idSalt[:], encKeyIDInfo, 4)
	if err != nil {
		return id, fmt.Errorf("derive key id: %w", err)
	}
	copy(id[:4], idSalt[:])
	copy(id[4:], b)
	return id, nil
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
	if last < encTag || (last == encTag && chunks > 1) || chunks > math.MaxUint32+1 {
		return 0, false
	}
	return body - chunks*encTag, true
}

// encrypted is the Replica Encrypted returns.
type encrypted struct {
	r    Replica
	keys []Key // keys[0] encrypts what is written
	rand io.Reader
	kdf  kdfPolicy

	// The master keys, one per key: a raw key's own bytes, a
	// passphrase's once resolve has read keys.json (nil before).
	ringMu    sync.Mutex
	masters   [][]byte
	hasPass   bool
	keysState keysState

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

// Encrypted wraps r so that every object is encrypted (AES-256-GCM)
// before it is stored and decrypted and authenticated when read; see the
// package comment on encrypt.go for the format. keys[0] encrypts what is
// written; every key reads, so a key can be rotated by putting the new
// one first and keeping the old ones for old objects. A passphrase key
// reads the replica's keys.json on first use and, on the first write with
// it, creates it. ReadRange (and so ObjectReaderAt) fetches only the chunks
// a range covers; GetVersioned/PutIf open and seal whole objects and
// compare the stored object's version. List reports
// plaintext sizes and leaves keys.json out.
func Encrypted(r Replica, keys ...Key) (Replica, error) {
	return newEncrypted(r, keys, rand.Reader, defaultKDF)
}

func newEncrypted(r Replica, keys []Key, rnd io.Reader, kdf kdfPolicy) (*encrypted, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no encryption key: %w", r, ErrBadKey)
	}
	e := &encrypted{r: r, rand: rnd, kdf: kdf, masters: make([][]byte, len(keys)),
		sizes: map[string]int64{}, headers: map[string]*objHeader{}}
	for i, k := range keys {
		switch {
		case k.pass != nil:
			e.hasPass = true
		case len(k.raw) == KeyLen:
			e.masters[i] = k.raw
		default:
			return nil, fmt.Errorf("%s: encryption key %d of %d is not a key (make keys with ParseKey or RawKey): %w", r, i+1, len(keys), ErrBadKey)
		}
		e.keys = append(e.keys, Key{raw: bytes.Clone(k.raw), pass: bytes.Clone(k.pass)})
	}
	return e, nil
}

// String implements Replica: the wrapped replica's URL, so errors and
// metrics name the bucket the operator knows.
func (e *encrypted) String() string { return e.r.String() }

// Identity is the wrapped replica's: encryption happens on upload, the
// spool holds plaintext, so it stays keyed by the bucket alone.
func (e *encrypted) Identity() string { return e.r.Identity() }

// objHeader is a parsed object header and the AEAD for its chunks.
type objHeader struct {
	raw  [encHeaderLen]byte
	aead cipher.AEAD
}

// newHeader makes the header of an object about to be written, with the
// write key (creating keys.json first when it is a passphrase).
func (e *encrypted) newHeader(ctx context.Context) (*objHeader, error) {
	if e.keys[0].pass != nil {
		if err := e.resolve(ctx, true); err != nil {
			return nil, err
		}
	}
	e.ringMu.Lock()
	master := e.masters[0]
	e.ringMu.Unlock()
	h := &objHeader{}
	copy(h.raw[:8], encMagic)
	binary.BigEndian.PutUint32(h.raw[16:20], encChunk)
	var idSalt [4]byte
	if _, err := io.ReadFull(e.rand, idSalt[:]); err != nil {
		return nil, fmt.Errorf("random key id: %w", err)
	}
	if _, err := io.ReadFull(e.rand, h.raw[20:]); err != nil {
		return nil, fmt.Errorf("random salt: %w", err)
	}
	id, err := keyIDV2(master, idSalt)
	if err != nil {
		return nil, err
	}
	copy(h.raw[8:16], id[:])
	return h, initAEAD(h, master, encObjInfo)
}

func initAEAD(h *objHeader, master []byte, info string) error {
	k, err := hkdf.Key(sha256.New, master, h.raw[20:], info, KeyLen)
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
// encHeaderLen of them) and returns its header, with the AEAD of the
// given key whose id it carries.
func (e *encrypted) parseHeader(ctx context.Context, key string, b []byte) (*objHeader, error) {
	n := min(len(b), len(encMagicPrefix))
	if string(b[:n]) != encMagicPrefix[:n] || len(b) == 0 {
		return nil, fmt.Errorf("%s: object %s is not encrypted (it was written without a key), but an encryption key was given: encrypted backups need a replica prefix of their own; to read this one, drop %w: %w",
			e.r, key, keyHint(), ErrNotEncrypted)
	}
	if len(b) < encHeaderLen {
		return nil, fmt.Errorf("%s: object %s is %d bytes, shorter than the %d-byte encryption header: truncated: %w", e.r, key, len(b), encHeaderLen, ErrTampered)
	}
	h := &objHeader{}
	copy(h.raw[:], b)
	magic := string(h.raw[:8])
	if magic != encMagic && magic != encMagicV1 {
		return nil, fmt.Errorf("%s: object %s has encryption format %q; this tailer reads %s and %s: written by a newer tailer, or damaged: %w", e.r, key, magic, encMagicV1, encMagic, ErrTampered)
	}
	if cs := binary.BigEndian.Uint32(h.raw[16:20]); cs != encChunk {
		return nil, fmt.Errorf("%s: object %s has encryption chunk size %d; this tailer reads %d (format %s): damaged, or written by a newer tailer: %w", e.r, key, cs, encChunk, magic, ErrTampered)
	}
	var masters [][]byte
	unresolved := false
	for attempt := 0; attempt < 2; attempt++ {
		if attempt == 1 {
			if !unresolved {
				break
			}
			// keys.json was missing when last looked for: another process
			// (a tailer run, while this one follows the replica) may have
			// written the first passphrase object since.
			e.ringMu.Lock()
			e.keysState = keysUnknown
			e.ringMu.Unlock()
		}
		if err := e.resolve(ctx, false); err != nil {
			return nil, err
		}
		e.ringMu.Lock()
		masters = slices.Clone(e.masters)
		unresolved = e.hasPass && e.keysState != keysLoaded
		e.ringMu.Unlock()
		if m, info, ok := e.match(h, masters); ok {
			return h, initAEAD(h, m, info)
		}
	}
	why := fmt.Sprintf("none of the %d keys given opens it", len(masters))
	if len(masters) == 1 {
		why = "the key given does not open it"
	}
	if unresolved {
		why += fmt.Sprintf("; a passphrase could not be tried: the replica has no %s, which the first write with a passphrase creates", KeysObject)
	}
	return nil, fmt.Errorf("%s: object %s was encrypted with another key (key id %x; %s): check %w: %w",
		e.r, key, h.raw[8:16], why, keyHint(), ErrWrongKey)
}

// match finds the master key whose id h carries, and the object key's
// info string of h's version.
func (e *encrypted) match(h *objHeader, masters [][]byte) (master []byte, info string, ok bool) {
	v1 := string(h.raw[:8]) == encMagicV1
	for i, m := range masters {
		switch {
		case m == nil:
		case v1:
			if e.keys[i].pass == nil && keyIDV1(m) == [8]byte(h.raw[8:16]) {
				return m, encObjInfoV1, true
			}
		default:
			if id, err := keyIDV2(m, [4]byte(h.raw[8:12])); err == nil && id == [8]byte(h.raw[8:16]) {
				return m, encObjInfo, true
			}
		}
	}
	return nil, "", false
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
	h, err := e.newHeader(ctx)
	if err != nil {
		return fmt.Errorf("%s: put %s: %w", e.r, key, err)
	}
	stored := int64(-1)
	if size >= 0 {
		if size/encChunk >= math.MaxUint32 {
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
	o, err := e.newOpener(ctx, key, rc)
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

func (e *encrypted) newOpener(ctx context.Context, key string, rc io.ReadCloser) (*opener, error) {
	src := bufio.NewReaderSize(rc, encChunk+encTag+1)
	hb := make([]byte, encHeaderLen)
	n, err := io.ReadFull(src, hb)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("%s: get %s: %w", e.r, key, err)
	}
	h, err := e.parseHeader(ctx, key, hb[:n])
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
func (e *encrypted) open(ctx context.Context, key string, data []byte) ([]byte, error) {
	o, err := e.newOpener(ctx, key, io.NopCloser(bytes.NewReader(data)))
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

// ListAfter implements Replica (keys are not encrypted).
func (e *encrypted) ListAfter(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	objs, err := e.r.ListAfter(ctx, prefix, startAfter)
	if err != nil {
		return nil, err
	}
	return e.plainSizes(objs), nil
}

// plainSizes remembers the stored sizes of listed objects and reports
// their plaintext sizes, leaving out keys.json and its lock file.
func (e *encrypted) plainSizes(objs []ObjectInfo) []ObjectInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := objs[:0]
	for _, o := range objs {
		if o.Key == KeysObject || o.Key == KeysObject+".lock" {
			continue // the wrapper's own (and the lock file older directory replicas kept beside it): no backup object
		}
		e.rememberLocked(o.Key, o.Size)
		if p, ok := plainSize(o.Size); ok {
			o.Size = p
		}
		out = append(out, o)
	}
	return out
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

// ReadRange implements Replica: it fetches the whole chunks covering
// [off, off+n) of the plaintext, in one request once the object's header
// and stored size are known, and authenticates each.
func (e *encrypted) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("%s: read: %w", e.r, err)
	}
	if err := checkRange(e.r, key, off, n); err != nil || n == 0 {
		return nil, err
	}
	b, err := e.readRangeOnce(ctx, key, off, n, true)
	if errors.Is(err, ErrTampered) {
		// Maybe only our cached size or header is stale (the object was
		// uploaded again): start over from the replica before calling it
		// damaged.
		e.forget(key)
		b, err = e.readRangeOnce(ctx, key, off, n, false)
	}
	return b, err
}

func (e *encrypted) readRangeOnce(ctx context.Context, key string, off, n int64, cached bool) ([]byte, error) {
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
			if hb, err = e.r.ReadRange(ctx, key, 0, min(encHeaderLen, stored)); err != nil {
				return nil, err
			}
		}
		return e.parseHeader(ctx, key, hb)
	}
	psize, sizeOK := plainSize(stored)
	lastChunk := max(0, (psize+encChunk-1)/encChunk-1)
	if !sizeOK || n > psize || off > psize-n {
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
	data, err := e.r.ReadRange(ctx, key, cStart, cEnd-cStart)
	if err != nil {
		return nil, err
	}
	if withHeader {
		if h, err = e.parseHeader(ctx, key, data[:encHeaderLen]); err != nil {
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

// GetVersioned implements Replica (the lease): the version is the stored
// object's, which is what PutIf compares.
func (e *encrypted) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	data, ver, err := e.r.GetVersioned(ctx, key)
	if err != nil {
		return nil, "", err
	}
	plain, err := e.open(ctx, key, data)
	if err != nil {
		return nil, "", err
	}
	return plain, ver, nil
}

// PutIf implements Replica, sealing data first.
func (e *encrypted) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	h, err := e.newHeader(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: put %s: %w", e.r, key, err)
	}
	sealed, err := io.ReadAll(newSealer(h, key, bytes.NewReader(data)))
	if err != nil {
		return "", fmt.Errorf("%s: put %s: %w", e.r, key, err)
	}
	e.forget(key)
	return e.r.PutIf(ctx, key, sealed, ifVersion)
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
func (u *unencrypted) Identity() string { return u.r.Identity() }
func (u *unencrypted) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return u.r.Put(ctx, key, r, size)
}
func (u *unencrypted) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	return u.r.List(ctx, prefix)
}
func (u *unencrypted) ListAfter(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	return u.r.ListAfter(ctx, prefix, startAfter)
}
func (u *unencrypted) Delete(ctx context.Context, key string) error { return u.r.Delete(ctx, key) }

func (u *unencrypted) check(key string, b []byte) error {
	if bytes.HasPrefix(b, []byte(encMagicPrefix)) {
		return fmt.Errorf("%s: object %s is encrypted: this replica was written with client-side encryption; give its key with %w: %w", u.r, key, keyHint(), ErrEncrypted)
	}
	return nil
}

func (u *unencrypted) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := u.r.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(rc)
	head, err := br.Peek(len(encMagicPrefix))
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

func (u *unencrypted) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := u.r.ReadRange(ctx, key, off, n)
	if err == nil && off == 0 {
		err = u.check(key, b)
	}
	return b, err
}

func (u *unencrypted) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	b, v, err := u.r.GetVersioned(ctx, key)
	if err == nil {
		err = u.check(key, b)
	}
	return b, v, err
}

func (u *unencrypted) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	return u.r.PutIf(ctx, key, data, ifVersion)
}

// keyHint names, in errors, where the replica's key comes from (the
// keys given to Encrypted); cmd/tailer names its flag and environment
// variable instead.
func keyHint() *setting.Error {
	return &setting.Error{Key: "EncryptionKey", Name: "the encryption key (the keys given to Encrypted)"}
}
