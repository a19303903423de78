package uploader

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
)

// TestKeyIDNotAFunctionOfTheKey: the key id stored in an object is not
// computable from the key alone (it depends on the object's random salt),
// so an attacker holding the bucket can neither test guesses of the key
// against it with one cheap hash, nor tell that two objects or two
// replicas share a key; a wrapper with the key still reads every object.
func TestKeyIDNotAFunctionOfTheKey(t *testing.T) {
	t.Parallel()
	key := testKey(9)
	unsalted := sha256.Sum256(append([]byte("tailer-backup key id v1"), key...))
	seen := map[string]string{}
	for i, raw := range []Replica{newTestFileReplica(t), newTestFileReplica(t)} {
		r := mustEncrypted(t, raw, key)
		for j := range 3 {
			name := fmt.Sprintf("replica %d object %d", i, j)
			k := fmt.Sprintf("o%d", j)
			put(t, r, k, []byte(name))
			stored := get(t, raw, k)
			id := string(stored[8:16])
			if bytes.Equal(stored[8:16], unsalted[:8]) {
				t.Fatalf("%s: the key id is the unsalted hash of the key", name)
			}
			if prev, ok := seen[id]; ok {
				t.Fatalf("%s and %s have the same key id %x: the id is a function of the key", prev, name, id)
			}
			seen[id] = name
			if got := get(t, mustEncrypted(t, raw, key), k); string(got) != name {
				t.Fatalf("%s reads back as %q", name, got)
			}
		}
	}
}
