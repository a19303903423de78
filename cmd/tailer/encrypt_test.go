package main

import (
	"bytes"
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEncryptionCLI runs the real binary with --encryption-key-file and
// TAILER_ENCRYPTION_KEY: an export is stored encrypted, restores and
// verifies with the key (from either source), and is refused clearly
// without it, with another key, or with a malformed key; the key is never
// printed.
func TestEncryptionCLI(t *testing.T) {
	tmp := t.TempDir()
	db := filepath.Join(tmp, "db")
	newStore(t, db)
	bucket := filepath.Join(tmp, "bucket")
	replica := "file://" + bucket

	key := bytes.Repeat([]byte{0x42}, 32)
	key[0] = 7
	b64 := base64.StdEncoding.EncodeToString(key)
	keyFile := filepath.Join(tmp, "key")
	if err := os.WriteFile(keyFile, []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(tmp, "pass")
	if err := os.WriteFile(passFile, []byte("passphrase: the CLI test's passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherFile := filepath.Join(tmp, "other")
	if err := os.WriteFile(otherFile, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))), 0o600); err != nil {
		t.Fatal(err)
	}
	shortFile := filepath.Join(tmp, "short")
	if err := os.WriteFile(shortFile, []byte("c2hvcnQ="), 0o600); err != nil {
		t.Fatal(err)
	}

	noSecret := func(out string) {
		t.Helper()
		if strings.Contains(out, b64) || strings.Contains(out, string(key)) {
			t.Fatalf("the key was printed:\n%s", out)
		}
	}
	code, stdout, stderr := runTailer(t, cliCase{args: []string{"export", "--db", db, "--scratch", filepath.Join(tmp, "scratch"), "--replica", replica, "--encryption-key-file", keyFile}})
	if code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, stdout, stderr)
	}
	noSecret(stdout + stderr)

	// Every stored object is ciphertext.
	n := 0
	filepath.WalkDir(bucket, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		if !bytes.HasPrefix(b, []byte("TAILENC2")) || bytes.Contains(b, []byte("TAILEXP")) || bytes.Contains(b, []byte(`"id"`)) {
			t.Errorf("%s is not encrypted", p)
		}
		return nil
	})
	if n < 2 {
		t.Fatalf("the export stored %d objects", n)
	}

	// With the key: from the file or the environment, alone or with others.
	for i, c := range []cliCase{
		{args: []string{"restore", "--replica", replica, "--to", filepath.Join(tmp, "r1"), "--encryption-key-file", keyFile}},
		{args: []string{"restore", "--replica", replica, "--to", filepath.Join(tmp, "r2"), "--encryption-key-file", passFile, "--encryption-key-file", keyFile}},
		{args: []string{"verify", "--replica", replica}, env: []string{"TAILER_ENCRYPTION_KEY=" + b64}},
		{args: []string{"list", "--replica", replica}, env: []string{"TAILER_ENCRYPTION_KEY_FILE=" + keyFile}},
	} {
		code, stdout, stderr := runTailer(t, c)
		if code != 0 {
			t.Fatalf("case %d %v: exit %d\n%s%s", i, c.args, code, stdout, stderr)
		}
		noSecret(stdout + stderr)
	}

	for _, c := range []cliCase{
		{name: "no key", args: []string{"restore", "--replica", replica, "--to", filepath.Join(tmp, "f1")},
			want: []string{"is encrypted", "--encryption-key-file", "TAILER_ENCRYPTION_KEY"}},
		{name: "list without a key", args: []string{"list", "--replica", replica},
			want: []string{"is encrypted", "--encryption-key-file"}},
		{name: "another key", args: []string{"restore", "--replica", replica, "--to", filepath.Join(tmp, "f2"), "--encryption-key-file", otherFile},
			want: []string{"was encrypted with another key", "key id", "check --encryption-key-file"}},
		{name: "short key", args: []string{"list", "--replica", replica, "--encryption-key-file", shortFile},
			want: []string{"decodes to 5 bytes", "head -c 32 /dev/urandom | base64"}},
		{name: "missing key file", args: []string{"list", "--replica", replica, "--encryption-key-file", filepath.Join(tmp, "nope")},
			want: []string{"--encryption-key-file", "no such file"}},
		{name: "both", args: []string{"list", "--replica", replica, "--encryption-key-file", keyFile}, env: []string{"TAILER_ENCRYPTION_KEY=" + b64},
			want: []string{"both --encryption-key-file and TAILER_ENCRYPTION_KEY"}},
	} {
		t.Run(c.name, func(t *testing.T) { noSecret(checkFailure(t, c)) })
	}
}
