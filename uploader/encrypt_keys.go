// Encryption keys: what an operator may give, and the replica's keys.json.
//
// A key is either 32 random bytes written in base64, used as they are, or
// a passphrase, stretched with Argon2id (RFC 9106) into 32 bytes. The
// passphrase's salt and cost parameters are per replica: they live in the
// replica's keys.json, a small plaintext object written once, with a
// conditional create, by the first write with a passphrase, and read by
// everyone after. Nothing else is accepted: in particular not 32 raw
// bytes, which earlier versions took as a key and which a 32-character
// passphrase silently passed for.

package uploader

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
)

// KeysObject is the replica object (relative to the prefix) that holds
// the passphrase KDF's salt and parameters. It is not secret; the
// encrypted wrapper hides it from List so that no caller takes it for a
// backup object.
const KeysObject = "keys.json"

const (
	// MinPassphraseLen is the shortest passphrase accepted, in bytes. The
	// KDF makes each guess cost, but a short passphrase is still guessed.
	MinPassphraseLen = 12
	maxPassphraseLen = 1024

	passphrasePrefix = "passphrase:"
	keysFormat       = "tailer-keys 1"
	kdfArgon2id      = "argon2id"
	kdfSaltLen       = 32
	maxKeysObject    = 64 << 10

	// makeKeyHint says how to make a key, for the errors about bad keys.
	makeKeyHint = "make a key with 'head -c 32 /dev/urandom | base64 > key' (or use a passphrase: a file holding 'passphrase: ' and then at least 12 characters)"
)

var (
	// ErrBadKey is wrapped by ParseKey when the key material is unusable.
	ErrBadKey = errors.New("unusable encryption key")
	// ErrKeysFile is wrapped when the replica's keys.json cannot be used
	// (not tailer's, too new, or KDF costs out of bounds): like a wrong
	// key, every passphrase object fails the same way.
	ErrKeysFile = errors.New("unusable keys.json")
)

// Key is one encryption key as the operator gave it: 32 random bytes, or
// a passphrase that becomes a key with the replica's keys.json. The zero
// Key is not a key.
type Key struct {
	raw  []byte
	pass []byte
}

// IsPassphrase reports whether k is a passphrase (it needs keys.json).
func (k Key) IsPassphrase() bool { return k.pass != nil }

// RawKey makes a Key of 32 bytes, which must be random: for programs and
// tests that hold the bytes already. Operators' key files go through
// ParseKey.
func RawKey(b []byte) (Key, error) {
	if len(b) != KeyLen {
		return Key{}, fmt.Errorf("encryption key of %d bytes: want %d (AES-256): %w", len(b), KeyLen, ErrBadKey)
	}
	return Key{raw: bytes.Clone(b)}, nil
}

// ParseKey reads an encryption key: the base64 (standard or URL alphabet,
// padded or not) of exactly 32 bytes, or "passphrase:" followed by a
// passphrase of at least MinPassphraseLen bytes (surrounding whitespace
// is ignored in both). Anything else, 32 raw bytes included, is refused
// with an error that says how to make a key. Errors never include the
// key material.
func ParseKey(data []byte) (Key, error) {
	text := bytes.TrimSpace(data)
	if len(text) == 0 {
		return Key{}, fmt.Errorf("the key is empty: %s: %w", makeKeyHint, ErrBadKey)
	}
	if p, ok := bytes.CutPrefix(text, []byte(passphrasePrefix)); ok {
		p = bytes.TrimSpace(p)
		switch {
		case len(p) < MinPassphraseLen:
			return Key{}, fmt.Errorf("the passphrase has %d bytes, want at least %d; better, %s: %w", len(p), MinPassphraseLen, makeKeyHint, ErrBadKey)
		case len(p) > maxPassphraseLen:
			return Key{}, fmt.Errorf("the passphrase has %d bytes, at most %d are accepted: %w", len(p), maxPassphraseLen, ErrBadKey)
		}
		return Key{pass: bytes.Clone(p)}, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(string(text)); err == nil {
			if len(k) != KeyLen {
				return Key{}, fmt.Errorf("the key decodes to %d bytes, want %d (AES-256): %s: %w", len(k), KeyLen, makeKeyHint, ErrBadKey)
			}
			return Key{raw: k}, nil
		}
	}
	if len(data) == KeyLen || len(text) == KeyLen {
		return Key{}, fmt.Errorf("the key is 32 raw bytes, which are no longer taken as a key (a 32-character passphrase would pass for one): %s; "+
			"a file that earlier versions used as 32 raw bytes keeps reading their backups once converted with 'base64 -w0 FILE > FILE.b64': %w", makeKeyHint, ErrBadKey)
	}
	return Key{}, fmt.Errorf("the key is not the base64 of %d bytes (%d bytes given): %s: %w", KeyLen, len(data), makeKeyHint, ErrBadKey)
}

// kdfParams are Argon2id's cost parameters.
type kdfParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// kdfPolicy is what a new keys.json gets and what a read one must stay
// within: a floor so that whoever can write to the bucket cannot weaken
// the KDF for later writes, a ceiling so a hostile keys.json cannot make
// a reader allocate or compute without bound.
type kdfPolicy struct {
	create, min, max kdfParams
}

// defaultKDF is RFC 9106's second recommended option (for when 2 GiB is
// too much): 64 MiB, 3 passes, 4 lanes — about a tenth of a second per
// derivation, which happens once per process and replica.
var defaultKDF = kdfPolicy{
	create: kdfParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4},
	min:    kdfParams{Time: 3, MemoryKiB: 64 << 10, Threads: 1},
	max:    kdfParams{Time: 16, MemoryKiB: 1 << 20, Threads: 16},
}

// keysFile is keys.json.
type keysFile struct {
	Format string `json:"format"`
	KDF    string `json:"kdf"`
	Salt   []byte `json:"salt"` // base64 in JSON
	kdfParams
}

func newKeysFile(rnd io.Reader, p kdfParams) (*keysFile, []byte, error) {
	kf := &keysFile{Format: keysFormat, KDF: kdfArgon2id, Salt: make([]byte, kdfSaltLen), kdfParams: p}
	if _, err := io.ReadFull(rnd, kf.Salt); err != nil {
		return nil, nil, fmt.Errorf("random salt: %w", err)
	}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return kf, append(b, '\n'), nil
}

// parseKeysFile reads and checks keys.json.
func parseKeysFile(b []byte, pol kdfPolicy) (*keysFile, error) {
	kf := &keysFile{}
	if err := json.Unmarshal(b, kf); err != nil {
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	switch {
	case kf.Format != keysFormat:
		return nil, fmt.Errorf("format %q, this tailer reads %q: written by a newer tailer, or damaged", kf.Format, keysFormat)
	case kf.KDF != kdfArgon2id:
		return nil, fmt.Errorf("key derivation %q, this tailer knows %q", kf.KDF, kdfArgon2id)
	case len(kf.Salt) < 16 || len(kf.Salt) > 64:
		return nil, fmt.Errorf("a salt of %d bytes, want 16 to 64", len(kf.Salt))
	}
	p, lo, hi := kf.kdfParams, pol.min, pol.max
	if p.Time < lo.Time || p.MemoryKiB < lo.MemoryKiB || p.Threads < lo.Threads {
		return nil, fmt.Errorf("the Argon2id parameters time=%d memory_kib=%d threads=%d are below the minimum time=%d memory_kib=%d threads=%d: was it tampered with?",
			p.Time, p.MemoryKiB, p.Threads, lo.Time, lo.MemoryKiB, lo.Threads)
	}
	if p.Time > hi.Time || p.MemoryKiB > hi.MemoryKiB || p.Threads > hi.Threads {
		return nil, fmt.Errorf("the Argon2id parameters time=%d memory_kib=%d threads=%d are above the maximum time=%d memory_kib=%d threads=%d this tailer computes",
			p.Time, p.MemoryKiB, p.Threads, hi.Time, hi.MemoryKiB, hi.Threads)
	}
	return kf, nil
}

func (kf *keysFile) derive(pass []byte) []byte {
	return argon2.IDKey(pass, kf.Salt, kf.Time, kf.MemoryKiB, kf.Threads, KeyLen)
}

// keysState says what is known of keys.json.
type keysState int

const (
	keysUnknown keysState = iota // not read yet
	keysAbsent                   // read, and there is none (yet)
	keysLoaded                   // read: every passphrase has its master key
)

// resolve derives the master keys of the passphrases, once: it reads
// keys.json, and when write is set and there is none, creates it (a
// conditional create, so two first writers agree on one salt). Without
// passphrases it does nothing; a read of a replica without keys.json
// leaves the passphrases unresolved (no object can be encrypted with
// them) and is not retried until a write.
func (e *encrypted) resolve(ctx context.Context, write bool) error {
	if !e.hasPass {
		return nil
	}
	e.ringMu.Lock()
	defer e.ringMu.Unlock()
	if e.keysState == keysLoaded || (e.keysState == keysAbsent && !write) {
		return nil
	}
	kf, err := e.loadKeysFile(ctx)
	if errors.Is(err, ErrNotFound) {
		if !write {
			e.keysState = keysAbsent
			return nil
		}
		kf, err = e.createKeysFile(ctx)
	}
	if err != nil {
		return err
	}
	for i, k := range e.keys {
		if k.pass != nil {
			e.masters[i] = kf.derive(k.pass)
		}
	}
	e.keysState = keysLoaded
	return nil
}

func (e *encrypted) loadKeysFile(ctx context.Context) (*keysFile, error) {
	rc, err := e.r.Get(ctx, KeysObject)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxKeysObject+1))
	if err != nil {
		return nil, fmt.Errorf("%s: get %s: %w", e.r, KeysObject, err)
	}
	if len(b) > maxKeysObject {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes: not tailer's: %w", e.r, KeysObject, maxKeysObject, ErrKeysFile)
	}
	kf, err := parseKeysFile(b, e.kdf)
	if err != nil {
		return nil, fmt.Errorf("%s: %s (the passphrase's salt and parameters): %w: %w", e.r, KeysObject, err, ErrKeysFile)
	}
	return kf, nil
}

func (e *encrypted) createKeysFile(ctx context.Context) (*keysFile, error) {
	kf, data, err := newKeysFile(e.rand, e.kdf.create)
	if err != nil {
		return nil, fmt.Errorf("%s: create %s: %w", e.r, KeysObject, err)
	}
	if _, err := e.r.PutIf(ctx, KeysObject, data, ""); err != nil {
		if errors.Is(err, ErrPreconditionFailed) {
			return e.loadKeysFile(ctx) // another writer was first: use its salt
		}
		return nil, fmt.Errorf("create %s: %w", KeysObject, err)
	}
	return kf, nil
}
