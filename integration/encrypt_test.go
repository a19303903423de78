package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/lease"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/uploader"
)

// TestEncryptedReplica runs the real agent over a Stalwart-like load into
// an encrypted replica (a directory with a passphrase, MinIO with a
// random key): restores through the wrapper equal the primary, also after
// a restart that resumed from the bucket (ranged reads of segment
// trailers through the wrapper); every object in the bucket, lease
// included, is ciphertext that holds none of the plaintext's known bytes
// (keys.json, with a passphrase, holds only its salt and KDF); the bucket
// cannot be restored without the key or with another one.
func TestEncryptedReplica(t *testing.T) {
	const passphrase = "passphrase: integration test passphrase"
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			random := make([]byte, uploader.KeyLen)
			rand.Read(random)
			key, err := uploader.RawKey(random)
			if b.name == "file" {
				key, err = uploader.ParseKey([]byte(passphrase))
			}
			if err != nil {
				t.Fatal(err)
			}
			var raw uploader.Replica
			enc := backend{b.name, func(t *testing.T) uploader.Replica {
				raw = b.open(t)
				r, err := uploader.Encrypted(raw, key)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}}
			e := newEnv(t, enc, 7)
			e.load(200)
			e.startTailer()
			var marks []loadgen.Mark
			e.load(200)
			marks = append(marks, e.mark())

			// Known plaintext, checked while the lease is held.
			e.waitRestorable(marks[0].Seq)
			gens := e.generations()
			checkCiphertext(t, raw, gens[len(gens)-1].ID, key.IsPassphrase())

			// A restart resumes the same generation from what the bucket holds.
			e.stopTailer()
			e.runTailer()
			e.load(200)
			marks = append(marks, e.mark())
			e.waitRestorable(marks[1].Seq)
			e.stopTailer()
			if g := e.generations(); len(g) != len(gens) {
				t.Fatalf("the restarted tailer started a new generation (%d, was %d): it could not read the encrypted bucket", len(g), len(gens))
			}
			for _, m := range marks {
				e.checkRestore(m)
			}

			ctx := context.Background()
			for _, c := range []struct {
				r    uploader.Replica
				want error
			}{
				{uploader.Unencrypted(raw), uploader.ErrEncrypted},
				{mustWrap(t, raw, bytes.Repeat([]byte{1}, uploader.KeyLen)), uploader.ErrWrongKey},
				{mustWrapKey(t, raw, "passphrase: another integration passphrase"), uploader.ErrWrongKey},
			} {
				_, err := restore.Run(ctx, restore.Options{Replica: c.r, To: filepath.Join(e.dir, "refused"), Log: testLogger(t)})
				if !errors.Is(err, c.want) {
					t.Fatalf("restore with %v: %v, want %v", c.want, err, c.want)
				}
			}

			// A tampered segment is damage like a corrupt one: the restore
			// names it, or with AllowPartial stops at the last good batch.
			g := e.generations()
			segs := g[len(g)-1].Segments
			last := segs[len(segs)-1].Key
			rc, err := raw.Get(ctx, last)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := raw.Put(ctx, last, bytes.NewReader(b), int64(len(b))); err != nil {
				t.Fatal(err)
			}
			_, err = restore.Run(ctx, restore.Options{Replica: e.replica, To: filepath.Join(e.dir, "tampered"), Log: testLogger(t)})
			if err == nil || !strings.Contains(err.Error(), "tampered with at chunk") || !strings.Contains(err.Error(), last) {
				t.Fatalf("restore over a tampered segment: %v", err)
			}
			res, err := restore.Run(ctx, restore.Options{Replica: e.replica, To: filepath.Join(e.dir, "partial"), AllowPartial: true, Log: testLogger(t)})
			if err != nil || !res.Partial || res.Seq >= segs[len(segs)-1].First {
				t.Fatalf("partial restore over a tampered segment: %+v, %v", res, err)
			}
		})
	}
}

func mustWrap(t *testing.T, r uploader.Replica, key []byte) uploader.Replica {
	t.Helper()
	k, err := uploader.RawKey(key)
	if err != nil {
		t.Fatal(err)
	}
	w, err := uploader.Encrypted(r, k)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mustWrapKey(t *testing.T, r uploader.Replica, keyFile string) uploader.Replica {
	t.Helper()
	k, err := uploader.ParseKey([]byte(keyFile))
	if err != nil {
		t.Fatal(err)
	}
	w, err := uploader.Encrypted(r, k)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// checkCiphertext reads every stored object raw: each starts with the
// encryption magic and contains none of the segment, export and end
// magics, the generation id (in generation.json and every header) or the
// lease's JSON field names; keys.json is there exactly when a passphrase
// is used, and holds no more than the KDF's salt and parameters.
func checkCiphertext(t *testing.T, raw uploader.Replica, gen string, passphrase bool) {
	t.Helper()
	ctx := context.Background()
	objs, err := raw.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".lock") {
			continue // the directory replica's lock file beside the lease, empty
		}
		rc, err := raw.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if o.Key == uploader.KeysObject {
			kinds["keys.json"]++
			var kf map[string]any
			if err := json.Unmarshal(b, &kf); err != nil || len(kf) != 6 || kf["kdf"] != "argon2id" || bytes.Contains(b, []byte("integration")) {
				t.Errorf("keys.json holds more than a salt and KDF parameters: %s (%v)", b, err)
			}
			continue
		}
		if !bytes.HasPrefix(b, []byte("TAILENC2")) {
			t.Errorf("%s is stored without the encryption magic", o.Key)
		}
		for _, plain := range []string{"TAILSEG", "TAILEXP", "TAILEND", gen, `"owner"`, `"expires"`} {
			if bytes.Contains(b, []byte(plain)) {
				t.Errorf("%s holds the plaintext %q", o.Key, plain)
			}
		}
		switch {
		case o.Key == lease.Key:
			kinds["lease"]++
		case strings.HasSuffix(o.Key, "generation.json"):
			kinds["generation.json"]++
		case strings.HasSuffix(o.Key, ".texp"):
			kinds["export"]++
		case strings.HasSuffix(o.Key, ".tseg"):
			kinds["segment"]++
		}
	}
	for _, k := range []string{"lease", "generation.json", "export", "segment"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the bucket to check (%v)", k, kinds)
		}
	}
	if (kinds["keys.json"] == 1) != passphrase {
		t.Errorf("keys.json in the bucket: %d, with a passphrase: %v", kinds["keys.json"], passphrase)
	}
}
