package main

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEncryptionKeyRefused: a key file must hold the base64 of 32 random
// bytes or a marked passphrase; anything else — a 32-character
// passphrase that earlier versions took for 32 raw key bytes, 32 raw
// bytes, base64 of the wrong length, a short passphrase — is refused with
// the command that makes a key.
func TestEncryptionKeyRefused(t *testing.T) {
	tmp := t.TempDir()
	replica := filepath.Join(tmp, "bucket")
	os.MkdirAll(replica, 0o755)
	rawKey := make([]byte, 32)
	rand.Read(rawKey)
	for _, c := range []struct {
		name    string
		content []byte
		want    []string
	}{
		{"32-character passphrase", []byte("correct horse battery staple 42!"), []string{"32 raw bytes"}},
		{"32-character passphrase and newline", []byte("correct horse battery staple 42!\n"), nil},
		{"32 random raw bytes", rawKey, []string{"base64"}},
		{"base64 of 16 bytes", []byte(base64.StdEncoding.EncodeToString(rawKey[:16]) + "\n"), []string{"decodes to 16 bytes"}},
		{"base64 of 33 bytes", []byte(base64.StdEncoding.EncodeToString(append(rawKey, 1))), []string{"decodes to 33 bytes"}},
		{"empty", nil, []string{"empty"}},
		{"short passphrase", []byte("passphrase: hunter2\n"), []string{"passphrase", "at least"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(tmp, "key")
			if err := os.WriteFile(f, c.content, 0o600); err != nil {
				t.Fatal(err)
			}
			want := append([]string{"--encryption-key-file " + f, "head -c 32 /dev/urandom | base64"}, c.want...)
			checkFailure(t, cliCase{args: []string{"list", "--replica", "file://" + replica, "--encryption-key-file", f}, want: want})
		})
	}
}

// TestEncryptionKeyRotation: with several --encryption-key-file, the
// first encrypts what is written and every one of them reads: a replica
// written first with key A and then with B (given as B, A) verifies and
// restores with B, A, but with neither key alone.
func TestEncryptionKeyRotation(t *testing.T) {
	tmp := t.TempDir()
	db := filepath.Join(tmp, "db")
	newStore(t, db)
	replica := "file://" + filepath.Join(tmp, "bucket")
	keyFile := func(name string) string {
		k := make([]byte, 32)
		rand.Read(k)
		f := filepath.Join(tmp, name)
		if err := os.WriteFile(f, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := keyFile("a"), keyFile("b")
	export := func(keys ...string) {
		t.Helper()
		args := []string{"export", "--db", db, "--scratch", filepath.Join(tmp, "scratch"), "--replica", replica}
		for _, k := range keys {
			args = append(args, "--encryption-key-file", k)
		}
		if code, stdout, stderr := runTailer(t, cliCase{args: args}); code != 0 {
			t.Fatalf("export with %v: exit %d\n%s%s", keys, code, stdout, stderr)
		}
	}
	export(a)
	export(b, a)
	for _, args := range [][]string{
		{"verify", "--replica", replica, "--encryption-key-file", b, "--encryption-key-file", a},
		{"restore", "--replica", replica, "--to", filepath.Join(tmp, "r"), "--encryption-key-file", b, "--encryption-key-file", a},
	} {
		if code, stdout, stderr := runTailer(t, cliCase{args: args}); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	for _, k := range []string{a, b} {
		code, stdout, stderr := runTailer(t, cliCase{args: []string{"verify", "--replica", replica, "--encryption-key-file", k}})
		if code == 0 {
			t.Fatalf("verify with only %s passed; the replica holds objects of both keys:\n%s%s", filepath.Base(k), stdout, stderr)
		}
	}
}

// TestEncryptionPassphrase: a passphrase key file makes the first export
// store keys.json (salt and KDF, never the passphrase) beside the
// generations; the replica then restores with the passphrase from the
// file or the environment, and another passphrase is another key.
func TestEncryptionPassphrase(t *testing.T) {
	tmp := t.TempDir()
	db := filepath.Join(tmp, "db")
	newStore(t, db)
	bucket := filepath.Join(tmp, "bucket")
	replica := "file://" + bucket
	const pass = "passphrase: a long passphrase for the CLI"
	passFile, otherFile := filepath.Join(tmp, "pass"), filepath.Join(tmp, "other")
	os.WriteFile(passFile, []byte(pass+"\n"), 0o600)
	os.WriteFile(otherFile, []byte("passphrase: another long passphrase\n"), 0o600)

	code, stdout, stderr := runTailer(t, cliCase{args: []string{"export", "--db", db, "--scratch", filepath.Join(tmp, "scratch"), "--replica", replica, "--encryption-key-file", passFile}})
	if code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, stdout, stderr)
	}
	kj, err := os.ReadFile(filepath.Join(bucket, "keys.json"))
	if err != nil || !strings.Contains(string(kj), `"kdf": "argon2id"`) || strings.Contains(string(kj), "long passphrase") {
		t.Fatalf("keys.json = %s (%v)", kj, err)
	}
	for _, c := range []cliCase{
		{args: []string{"restore", "--replica", replica, "--to", filepath.Join(tmp, "r1"), "--encryption-key-file", passFile}},
		{args: []string{"verify", "--replica", replica}, env: []string{"TAILER_ENCRYPTION_KEY=" + pass}},
	} {
		if code, stdout, stderr := runTailer(t, c); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", c.args, code, stdout, stderr)
		}
	}
	checkFailure(t, cliCase{args: []string{"list", "--replica", replica, "--encryption-key-file", otherFile},
		want: []string{"was encrypted with another key", "check --encryption-key-file"}})

	// A keys.json that would make the KDF cheap is refused, not used.
	weak := strings.Replace(string(kj), `"time": 3`, `"time": 1`, 1)
	if weak == string(kj) {
		t.Fatalf("keys.json has no time of 3: %s", kj)
	}
	os.WriteFile(filepath.Join(bucket, "keys.json"), []byte(weak), 0o644)
	checkFailure(t, cliCase{args: []string{"list", "--replica", replica, "--encryption-key-file", passFile},
		want: []string{"keys.json", "below the minimum", "tampered"}})
}
