package uploader

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

var updateVectors = flag.Bool("update-vectors", false, "rewrite the version 2 files of testdata/encrypt from vectors.json")

const vectorDir = "testdata/encrypt"

type encVector struct {
	Name     string `json:"name"`
	Version  int    `json:"version"`
	Key      string `json:"key"`
	KeysJSON string `json:"keys_json"`
	Object   string `json:"object"`
	Rand     string `json:"rand"`
	Text     string `json:"text"`
	Repeat   int    `json:"repeat"`
	File     string `json:"file"`
}

func (v encVector) plaintext() []byte { return bytes.Repeat([]byte(v.Text), v.Repeat) }

func loadVectors(t testing.TB) []encVector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Vectors []encVector }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Vectors
}

// vectorReplica is a fresh directory replica holding the vector's
// keys.json, if it has one.
func vectorReplica(t *testing.T, v encVector) Replica {
	raw := newTestFileReplica(t)
	if v.KeysJSON != "" {
		b, err := os.ReadFile(filepath.Join(vectorDir, v.KeysJSON))
		if err != nil {
			t.Fatal(err)
		}
		put(t, raw, KeysObject, b)
	}
	return raw
}

// TestEncryptVectors pins the object format: each version 2 vector is
// encrypted again with its random source replayed and must come out byte
// for byte as stored, and every stored vector — the version 1 ones were
// written by the version 1 code — decrypts to its plaintext, alone and
// next to another key (rotation across versions).
func TestEncryptVectors(t *testing.T) {
	ctx := context.Background()
	vs := loadVectors(t)
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	other := rawKey(t, testKey(200))
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			key := parseKey(t, v.Key)
			plain := v.plaintext()
			path := filepath.Join(vectorDir, v.File)
			if v.Version == 2 {
				rnd, err := hex.DecodeString(v.Rand)
				if err != nil || len(rnd) != 4+encSaltLen {
					t.Fatalf("rand %q: %d bytes, %v", v.Rand, len(rnd), err)
				}
				raw := vectorReplica(t, v)
				w, err := newEncrypted(raw, []Key{key}, bytes.NewReader(rnd), defaultKDF)
				if err != nil {
					t.Fatal(err)
				}
				put(t, w, v.Object, plain)
				got := get(t, raw, v.Object)
				if *updateVectors {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("encrypting the vector gives other bytes than %s (%d bytes, want %d): the format changed", path, len(got), len(want))
				}
			}
			stored, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if magic := []string{1: encMagicV1, 2: encMagic}[v.Version]; !bytes.HasPrefix(stored, []byte(magic)) {
				t.Fatalf("%s does not start with %s", path, magic)
			}
			if int64(len(stored)) != cipherSize(int64(len(plain))) {
				t.Fatalf("%s has %d bytes, want %d", path, len(stored), cipherSize(int64(len(plain))))
			}
			raw := vectorReplica(t, v)
			put(t, raw, v.Object, stored)
			for _, keys := range [][]Key{{key}, {other, key}} {
				r := newTestEncrypted(t, raw, defaultKDF, keys...)
				if got := get(t, r, v.Object); !bytes.Equal(got, plain) {
					t.Fatalf("%s decrypts to %d other bytes", path, len(got))
				}
				if len(plain) > 10 {
					off := int64(len(plain) - 10)
					if got, err := r.ReadRange(ctx, v.Object, off, 10); err != nil || !bytes.Equal(got, plain[off:]) {
						t.Fatalf("%s in place: %v", path, err)
					}
				}
			}
			if _, err := newTestEncrypted(t, raw, defaultKDF, other).Get(ctx, v.Object); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("%s with another key: %v", path, err)
			}
			// Under another name it does not authenticate.
			put(t, raw, v.Object+"-moved", stored)
			rc, err := newTestEncrypted(t, raw, defaultKDF, key).Get(ctx, v.Object+"-moved")
			if err == nil {
				_, err = readAllClose(rc)
			}
			if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "tampered") {
				t.Fatalf("%s renamed: %v, want ErrTampered", path, err)
			}
		})
	}
}

func readAllClose(rc io.ReadCloser) ([]byte, error) {
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestVectorsMatchTheDocumentedFormat decrypts every raw-key vector with
// a decoder written from the format comment in encrypt.go alone, so the
// comment and the bytes cannot drift apart.
func TestVectorsMatchTheDocumentedFormat(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			key := parseKey(t, v.Key).raw
			if v.KeysJSON != "" {
				// A passphrase: Argon2id(passphrase, salt, cost) of keys.json.
				b, err := os.ReadFile(filepath.Join(vectorDir, v.KeysJSON))
				if err != nil {
					t.Fatal(err)
				}
				var kj struct {
					Salt      []byte `json:"salt"`
					Time      uint32 `json:"time"`
					MemoryKiB uint32 `json:"memory_kib"`
					Threads   uint8  `json:"threads"`
				}
				if err := json.Unmarshal(b, &kj); err != nil {
					t.Fatalf("keys.json: %v", err)
				}
				pass := strings.TrimSpace(strings.TrimPrefix(v.Key, "passphrase:"))
				key = argon2.IDKey([]byte(pass), kj.Salt, kj.Time, kj.MemoryKiB, kj.Threads, 32)
			}
			b, err := os.ReadFile(filepath.Join(vectorDir, v.File))
			if err != nil {
				t.Fatal(err)
			}
			header, body := b[:44], b[44:]
			id, salt := header[8:16], header[20:44]
			objInfo := "tailer-backup object key v2"
			switch string(header[:8]) {
			case "TAILENC1":
				sum := sha256.Sum256(append([]byte("tailer-backup key id v1"), key...))
				if !bytes.Equal(id, sum[:8]) {
					t.Fatal("v1 key id is not SHA-256(info || key)[:8]")
				}
				objInfo = "tailer-backup object key v1"
			case "TAILENC2":
				tag, err := hkdf.Key(sha256.New, key, id[:4], "tailer-backup key id v2", 4)
				if err != nil || !bytes.Equal(id[4:], tag) {
					t.Fatalf("v2 key id is not R || HKDF(key, R, info)[:4] (%v)", err)
				}
			default:
				t.Fatalf("magic %q", header[:8])
			}
			if binary.BigEndian.Uint32(header[16:20]) != 65536 {
				t.Fatal("chunk size is not 65536")
			}
			objKey, err := hkdf.Key(sha256.New, key, salt, objInfo, 32)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := aes.NewCipher(objKey)
			gcm, _ := cipher.NewGCM(block)
			var plain []byte
			for i := uint32(0); ; i++ {
				n := min(len(body), 65536+16)
				last := n == len(body)
				nonce := make([]byte, 12)
				binary.BigEndian.PutUint32(nonce[8:], i)
				aad := append(append(bytes.Clone(header), map[bool]byte{false: 0, true: 1}[last]), v.Object...)
				p, err := gcm.Open(nil, nonce, body[:n], aad)
				if err != nil {
					t.Fatalf("chunk %d does not open as documented: %v", i, err)
				}
				plain, body = append(plain, p...), body[n:]
				if last {
					break
				}
			}
			if !bytes.Equal(plain, v.plaintext()) {
				t.Fatal("the documented decoding gives another plaintext")
			}
		})
	}
}
