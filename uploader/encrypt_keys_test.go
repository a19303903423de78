package uploader

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// cheapKDF keeps the tests' Argon2id derivations fast; the policy's
// floor and ceiling logic is the same as defaultKDF's.
var cheapKDF = kdfPolicy{
	create: kdfParams{Time: 1, MemoryKiB: 64, Threads: 1},
	min:    kdfParams{Time: 1, MemoryKiB: 64, Threads: 1},
	max:    defaultKDF.max,
}

func parseKey(t *testing.T, s string) Key {
	t.Helper()
	k, err := ParseKey([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rawKey(t *testing.T, b []byte) Key {
	t.Helper()
	k, err := RawKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestEncrypted(t *testing.T, r Replica, kdf kdfPolicy, keys ...Key) Replica {
	t.Helper()
	e, err := newEncrypted(r, keys, rand.Reader, kdf)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// secretOf is the key material of a key file's content.
func secretOf(in string) string {
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(in), "passphrase:"))
}

func TestParseKey(t *testing.T) {
	k := testKey(3)
	for name, c := range map[string]struct {
		in   string
		key  []byte
		pass string
	}{
		"base64":               {in: base64.StdEncoding.EncodeToString(k) + "\n", key: k},
		"base64 no pad":        {in: base64.RawStdEncoding.EncodeToString(k), key: k},
		"base64 url":           {in: "  " + base64.URLEncoding.EncodeToString(k) + "\r\n", key: k},
		"passphrase":           {in: "passphrase: correct horse battery staple\n", pass: "correct horse battery staple"},
		"passphrase no space":  {in: "passphrase:0123456789ab", pass: "0123456789ab"},
		"passphrase multiline": {in: "passphrase: line one\nline two\n", pass: "line one\nline two"},
	} {
		got, err := ParseKey([]byte(c.in))
		switch {
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case !bytes.Equal(got.raw, c.key) || string(got.pass) != c.pass || got.IsPassphrase() != (c.pass != ""):
			t.Errorf("%s: parsed as raw %x passphrase %q", name, got.raw, got.pass)
		}
	}
	secret := base64.StdEncoding.EncodeToString(k[:16])
	for name, c := range map[string]struct{ in, want string }{
		"empty":                    {"", "empty"},
		"blank":                    {" \n", "empty"},
		"not base64":               {"short", "not the base64 of 32 bytes"},
		"32-character passphrase":  {"correct horse battery staple 42!", "32 raw bytes"},
		"32 raw bytes":             {string(k), "32 raw bytes"},
		"base64 of 16 bytes":       {secret, "decodes to 16 bytes"},
		"base64 of 33 bytes":       {base64.StdEncoding.EncodeToString(append(bytes.Clone(k), 1)), "decodes to 33 bytes"},
		"short passphrase":         {"passphrase: hunter2", "at least 12"},
		"empty passphrase":         {"passphrase:\n", "at least 12"},
		"passphrase, no marker":    {"correct horse battery staple", "not the base64"},
		"passphrase marker casing": {"Passphrase: correct horse battery staple", "not the base64"},
		"huge passphrase":          {"passphrase: " + strings.Repeat("x", 2000), "at most 1024"},
	} {
		_, err := ParseKey([]byte(c.in))
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case !errors.Is(err, ErrBadKey):
			t.Errorf("%s: %v does not wrap ErrBadKey", name, err)
		case len(secretOf(c.in)) > 4 && strings.Contains(err.Error(), secretOf(c.in)):
			t.Errorf("%s: the error prints the key: %v", name, err)
		case !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %v, want %q", name, err, c.want)
		case !strings.Contains(err.Error(), "head -c 32 /dev/urandom | base64") && !strings.Contains(err.Error(), "at most"):
			t.Errorf("%s: the error does not say how to make a key: %v", name, err)
		}
	}
	if _, err := RawKey(k[:16]); !errors.Is(err, ErrBadKey) {
		t.Errorf("RawKey of 16 bytes: %v", err)
	}
	if _, err := Encrypted(newTestFileReplica(t)); !errors.Is(err, ErrBadKey) {
		t.Errorf("Encrypted without a key: %v", err)
	}
	if _, err := Encrypted(newTestFileReplica(t), Key{}); !errors.Is(err, ErrBadKey) {
		t.Errorf("Encrypted with the zero Key: %v", err)
	}
}

// TestEncryptedRotation: with keys (new, old) the wrapper writes with the
// new key and reads what either wrote — streamed, in place and through
// conditional reads — while each key alone reads only its own objects.
func TestEncryptedRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := newTestFileReplica(t)
	oldK, newK := rawKey(t, testKey(1)), rawKey(t, testKey(50))
	old := newTestEncrypted(t, raw, cheapKDF, oldK)
	big := randomBytes(2*encChunk+5, 1)
	put(t, old, "old/seg", big)
	if _, err := old.PutIf(ctx, "lease.json", []byte(`{"holder":"a"}`), ""); err != nil {
		t.Fatal(err)
	}

	both := newTestEncrypted(t, raw, cheapKDF, newK, oldK)
	put(t, both, "new/seg", big)
	for _, k := range []string{"old/seg", "new/seg"} {
		if got := get(t, both, k); !bytes.Equal(got, big) {
			t.Fatalf("%s through (new, old) differs", k)
		}
		if got, err := both.ReadRange(ctx, k, encChunk-2, 4); err != nil || !bytes.Equal(got, big[encChunk-2:encChunk+2]) {
			t.Fatalf("%s in place through (new, old): %v", k, err)
		}
	}
	_, v, err := both.GetVersioned(ctx, "lease.json")
	if err != nil {
		t.Fatalf("lease written with the old key, read with (new, old): %v", err)
	}
	if _, err := both.PutIf(ctx, "lease.json", []byte(`{"holder":"b"}`), v); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		key  Key
		name string
		own  string
		not  []string
	}{
		{oldK, "old", "old/seg", []string{"new/seg", "lease.json"}},
		{newK, "new", "new/seg", []string{"old/seg"}},
	} {
		alone := newTestEncrypted(t, raw, cheapKDF, c.key)
		if got := get(t, alone, c.own); !bytes.Equal(got, big) {
			t.Fatalf("the %s key alone does not read %s", c.name, c.own)
		}
		for _, k := range c.not {
			_, _, err := alone.GetVersioned(ctx, k)
			if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "the key given does not open it") {
				t.Fatalf("the %s key alone read %s: %v, want ErrWrongKey", c.name, k, err)
			}
		}
	}
	_, err = newTestEncrypted(t, raw, cheapKDF, rawKey(t, testKey(90)), rawKey(t, testKey(91))).Get(ctx, "old/seg")
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "none of the 2 keys given opens it") {
		t.Fatalf("two wrong keys: %v", err)
	}
}

// TestEncryptedPassphrase: a passphrase key creates the replica's
// keys.json (salt, KDF) on its first write and only then; List hides it;
// other wrappers and processes with the same passphrase agree on it, also
// when two were first; another passphrase, the same one on another
// replica (another salt), and a replica whose keys.json is gone are
// refused as another key.
func TestEncryptedPassphrase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := newTestFileReplica(t)
	pass := parseKey(t, "passphrase: correct horse battery staple")

	w1 := newTestEncrypted(t, raw, cheapKDF, pass)
	w2 := newTestEncrypted(t, raw, cheapKDF, pass)
	follower := newTestEncrypted(t, raw, cheapKDF, pass) // reads only
	// A read first: nothing is created.
	foreign := append([]byte("TAILENC2\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00"), make([]byte, encSaltLen+encTag)...)
	put(t, raw, "generations/g/plain", foreign) // of no key at all
	for _, w := range []Replica{w2, follower} {
		wantNotFound(t, w, "nothing")
		if _, err := w.Get(ctx, "generations/g/plain"); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("a foreign object before keys.json exists: %v", err)
		}
	}
	if err := raw.Delete(ctx, "generations/g/plain"); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, raw, "")
	put(t, w1, "generations/g/a", []byte("written by w1"))
	// A reader that found no keys.json looks again for an object it
	// cannot open: it follows a replica another process writes.
	if got := get(t, follower, "generations/g/a"); string(got) != "written by w1" {
		t.Fatalf("the follower reads %q", got)
	}
	// w2 saw no keys.json when it read; its first write finds w1's.
	put(t, w2, "generations/g/b", []byte("written by w2"))
	for _, w := range []Replica{w1, w2, newTestEncrypted(t, raw, cheapKDF, pass)} {
		if string(get(t, w, "generations/g/a")) != "written by w1" || string(get(t, w, "generations/g/b")) != "written by w2" {
			t.Fatal("the wrappers do not agree on the passphrase's key")
		}
		for _, o := range list(t, w, "") {
			if o.Key == KeysObject {
				t.Fatalf("the wrapper lists %s", KeysObject)
			}
		}
		wantKeys(t, w, "generations/", "generations/g/a", "generations/g/b")
	}
	wantKeys(t, raw, KeysObject, KeysObject) // the directory replica's lock file is never listed
	stored := get(t, raw, KeysObject)
	var kf keysFile
	if err := json.Unmarshal(stored, &kf); err != nil || kf.Format != keysFormat || kf.KDF != "argon2id" || len(kf.Salt) != kdfSaltLen || kf.kdfParams != cheapKDF.create {
		t.Fatalf("keys.json = %s (%v)", stored, err)
	}
	if bytes.Contains(stored, []byte("horse")) {
		t.Fatal("keys.json holds the passphrase")
	}
	// Only a passphrase writer creates it.
	other := newTestFileReplica(t)
	put(t, newTestEncrypted(t, other, cheapKDF, rawKey(t, testKey(1)), pass), "x", []byte("raw key writes"))
	wantKeys(t, other, "", "x")

	// A passphrase and a raw key (rotation between the kinds).
	if got := get(t, newTestEncrypted(t, raw, cheapKDF, rawKey(t, testKey(7)), pass), "generations/g/a"); string(got) != "written by w1" {
		t.Fatal("(raw, passphrase) does not read the passphrase's object")
	}

	wrong := func(r Replica, key, want string) {
		t.Helper()
		_, err := r.Get(ctx, key)
		if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), want) {
			t.Fatalf("get %s: %v, want ErrWrongKey and %q", key, err, want)
		}
	}
	wrong(newTestEncrypted(t, raw, cheapKDF, parseKey(t, "passphrase: correct horse battery stapler")), "generations/g/a", "does not open it")

	// The same passphrase on another replica derives another key.
	copyTo := newTestFileReplica(t)
	put(t, newTestEncrypted(t, copyTo, cheapKDF, pass), "init", nil)
	put(t, copyTo, "generations/g/a", get(t, raw, "generations/g/a"))
	wrong(newTestEncrypted(t, copyTo, cheapKDF, pass), "generations/g/a", "does not open it")

	// Without keys.json a passphrase cannot be tried, and the error says why.
	gone := newTestFileReplica(t)
	put(t, gone, "generations/g/a", get(t, raw, "generations/g/a"))
	wrong(newTestEncrypted(t, gone, cheapKDF, pass), "generations/g/a", "the replica has no keys.json")
}

// TestKeysFileRefused: a keys.json that weakens the KDF below the floor,
// asks for more than a reader computes, or is not tailer's, is refused
// before any derivation, naming keys.json.
func TestKeysFileRefused(t *testing.T) {
	t.Parallel()
	good := func() map[string]any {
		return map[string]any{"format": keysFormat, "kdf": "argon2id", "salt": base64.StdEncoding.EncodeToString(make([]byte, 32)),
			"time": 3, "memory_kib": 64 << 10, "threads": 4}
	}
	for name, c := range map[string]struct {
		edit func(m map[string]any)
		raw  string
		want string
	}{
		"weak time":      {edit: func(m map[string]any) { m["time"] = 1 }, want: "below the minimum"},
		"weak memory":    {edit: func(m map[string]any) { m["memory_kib"] = 8 }, want: "below the minimum"},
		"no threads":     {edit: func(m map[string]any) { m["threads"] = 0 }, want: "below the minimum"},
		"huge memory":    {edit: func(m map[string]any) { m["memory_kib"] = 1 << 30 }, want: "above the maximum"},
		"huge time":      {edit: func(m map[string]any) { m["time"] = 1 << 31 }, want: "above the maximum"},
		"other kdf":      {edit: func(m map[string]any) { m["kdf"] = "pbkdf2" }, want: `key derivation "pbkdf2"`},
		"newer format":   {edit: func(m map[string]any) { m["format"] = "tailer-keys 2" }, want: "newer tailer"},
		"short salt":     {edit: func(m map[string]any) { m["salt"] = "AAAA" }, want: "salt of 3 bytes"},
		"not json":       {raw: "TAILENC2....", want: "not valid JSON"},
		"larger than ok": {raw: `{"format":"` + strings.Repeat("x", maxKeysObject) + `"}`, want: "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw := newTestFileReplica(t)
			data := []byte(c.raw)
			if c.edit != nil {
				m := good()
				c.edit(m)
				data, _ = json.Marshal(m)
			}
			put(t, raw, KeysObject, data)
			put(t, mustEncrypted(t, raw, testKey(1)), "x", []byte("y")) // read below with the passphrase
			pass := parseKey(t, "passphrase: correct horse battery staple")
			for _, op := range []func(r Replica) error{
				func(r Replica) error { _, err := r.Get(context.Background(), "x"); return err },
				func(r Replica) error { return r.Put(context.Background(), "z", strings.NewReader("y"), 1) },
			} {
				err := op(newTestEncrypted(t, raw, defaultKDF, pass))
				if !errors.Is(err, ErrKeysFile) || !strings.Contains(err.Error(), KeysObject) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("%v, want an error naming %s and %q", err, KeysObject, c.want)
				}
			}
		})
	}
	// The good one is accepted (and derives with the default cost).
	raw := newTestFileReplica(t)
	data, _ := json.Marshal(good())
	put(t, raw, KeysObject, data)
	put(t, newTestEncrypted(t, raw, defaultKDF, parseKey(t, "passphrase: correct horse battery staple")), "x", []byte("y"))
}
