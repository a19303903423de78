package uploader

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/docexample"
)

// TestDesignDocKeysJSON checks the documented keys.json and KDF bounds.
func TestDesignDocKeysJSON(t *testing.T) {
	doc := docexample.Load(t, "design.md")
	var kf keysFile
	doc.CheckJSON(t, KeysObject, &kf)
	if _, err := parseKeysFile([]byte(doc.Example(t, KeysObject)), defaultKDF); err != nil {
		t.Fatalf("the documented %s is refused: %v", KeysObject, err)
	}
	if kf.kdfParams != defaultKDF.create {
		t.Errorf("the documented %s has costs %+v, a new one gets %+v", KeysObject, kf.kdfParams, defaultKDF.create)
	}
	flat := doc.Flat()
	for _, p := range []kdfParams{defaultKDF.min, defaultKDF.max} {
		if s := fmt.Sprintf("time=%d, memory_kib=%d, threads=%d", p.Time, p.MemoryKiB, p.Threads); !strings.Contains(flat, s) {
			t.Errorf("the document does not state the KDF bound %s", s)
		}
	}
	keys := doc.Lines(t, "keys")
	if !slices.Contains(keys, KeysObject) {
		t.Errorf("the documented keys do not show %s", KeysObject)
	}
	for _, k := range keys {
		if lock, ok := strings.CutSuffix(k, ".lock"); ok && !slices.Contains(keys, lock) {
			t.Errorf("%s is the lock of %s, which the documented keys do not show", k, lock)
		}
	}
}

// TestDesignDocEncryptionVector checks the documented test vector: its
// bytes are testdata/encrypt/v2-small.enc, and the derived values the
// document gives follow from the documented key and salt.
func TestDesignDocEncryptionVector(t *testing.T) {
	doc := docexample.Load(t, "design.md")
	got, err := hex.DecodeString(strings.Join(doc.Lines(t, "v2-small.enc"), ""))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(vectorDir, "v2-small.enc"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("the documented v2-small.enc differs from %s/v2-small.enc", vectorDir)
	}
	var v encVector
	for _, x := range loadVectors(t) {
		if x.File == "v2-small.enc" {
			v = x
		}
	}
	flat := doc.Flat()
	for _, s := range []string{v.Key, "`" + v.Object + "`", "`" + strings.TrimSuffix(v.Text, "\n") + `\n` + "`"} {
		if !strings.Contains(flat, s) {
			t.Errorf("the document does not give the vector's %q", s)
		}
	}
	for _, s := range []string{encMagic, encMagicV1, encKeyIDInfo, encObjInfo, encKeyIDInfoV1, encObjInfoV1,
		fmt.Sprintf("chunk size, big-endian: %d", encChunk), fmt.Sprintf("the %d-byte header", encHeaderLen)} {
		if !strings.Contains(flat, s) {
			t.Errorf("the document's format description lacks %q", s)
		}
	}
	master := parseKey(t, v.Key).raw
	objKey, err := hkdf.Key(sha256.New, master, got[20:44], encObjInfo, KeyLen)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flat, hex.EncodeToString(objKey)) {
		t.Errorf("the document does not give the object key %x", objKey)
	}
}
