package blobfs

import (
	"encoding/base32"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
)

// HashLen is the length of a blob hash (BLAKE3-256), the key of every
// mail blob.
const HashLen = 32

// NameLen is the length of a hash's file name: 32 bytes in unpadded
// base32.
const NameLen = 52

// MaxDepth is the deepest directory nesting Stalwart uses: a configured
// depth above it is capped (Stalwart's FsStore takes min(depth, 5)).
const MaxDepth = 5

// DefaultDepth is Stalwart's default depth for a filesystem blob store.
const DefaultDepth = 2

// Alphabet is Stalwart's base32 alphabet (utils::codec::base32_custom).
const Alphabet = "abcdefghijklmnopqrstuvwxyz792013"

var encoding = base32.NewEncoding(Alphabet).WithPadding(base32.NoPadding)

// Hash is a blob's 32-byte BLAKE3 hash, the key Stalwart stores it under.
type Hash [HashLen]byte

// Name is the hash's file name in Stalwart's base32.
func (h Hash) Name() string { return encoding.EncodeToString(h[:]) }

// String is the file name, so logs name a blob the way its file is named.
func (h Hash) String() string { return h.Name() }

// KeyName is the file name Stalwart gives any blob key, hash or not.
func KeyName(key []byte) string { return encoding.EncodeToString(key) }

// ErrNotName is wrapped by ParseName and ParseKeyName for a string that is
// not the canonical name of a blob key.
var ErrNotName = errors.New("not a Stalwart blob file name")

// ParseKeyName decodes a file name into the blob key it names. Only the
// canonical spelling is accepted (the one KeyName gives), so one key has
// one name and a name found on disk round-trips exactly.
func ParseKeyName(name string) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty", ErrNotName)
	}
	key, err := encoding.DecodeString(name)
	if err != nil || encoding.EncodeToString(key) != name {
		return nil, fmt.Errorf("%w: %q", ErrNotName, name)
	}
	return key, nil
}

// ParseName decodes the file name of a hash (52 characters).
func ParseName(name string) (Hash, error) {
	var h Hash
	if len(name) != NameLen {
		return h, fmt.Errorf("%w: %q is %d characters, a blob hash's name has %d", ErrNotName, name, len(name), NameLen)
	}
	key, err := ParseKeyName(name)
	if err != nil {
		return h, err
	}
	copy(h[:], key)
	return h, nil
}

// Layout is one filesystem blob store: its root directory and the number
// of directory levels (Stalwart's "depth", capped at MaxDepth).
type Layout struct {
	Root   string
	Levels int
}

// ErrDepth is wrapped by NewLayout for a negative depth.
var ErrDepth = errors.New("blob store depth must be 0 or more")

// NewLayout describes the blob store at root with the given configured
// depth; depths above MaxDepth mean MaxDepth, as in Stalwart.
func NewLayout(root string, depth int) (Layout, error) {
	if depth < 0 {
		return Layout{}, fmt.Errorf("%w, got %d", ErrDepth, depth)
	}
	return Layout{Root: root, Levels: min(depth, MaxDepth)}, nil
}

// levelName is the directory name of one key byte: lowercase hex, not
// zero padded (Rust's format!("{:x}", byte)).
func levelName(b byte) string { return strconv.FormatUint(uint64(b), 16) }

// parseLevel is levelName's inverse, canonical spellings only.
func parseLevel(s string) (byte, bool) {
	v, err := strconv.ParseUint(s, 16, 8)
	if err != nil || levelName(byte(v)) != s {
		return 0, false
	}
	return byte(v), true
}

// Path is where Stalwart keeps the blob with hash h.
func (l Layout) Path(h Hash) string { return l.KeyPath(h[:]) }

// KeyPath is where Stalwart keeps the blob stored under key (a hash, or
// one of its non-hash keys). A key shorter than the depth gets one level
// per byte it has, as Stalwart's take(levels) does.
func (l Layout) KeyPath(key []byte) string {
	parts := make([]string, 0, l.Levels+2)
	parts = append(parts, l.Root)
	for _, b := range key[:min(len(key), l.Levels)] {
		parts = append(parts, levelName(b))
	}
	return filepath.Join(append(parts, KeyName(key))...)
}
