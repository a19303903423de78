package uploader

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newTestFileReplica(t *testing.T) Replica {
	r, err := Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir())+"/replica", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFileSkipsTempFiles: a crash mid-Put leaves a temp file that List
// must not report and Get must not serve.
func TestFileSkipsTempFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	r, err := Open(context.Background(), "file://"+root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	put(t, r, "gen/segments/a", []byte("a"))
	if err := os.WriteFile(filepath.Join(root, "gen", "segments", TempPrefix+"123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, r, "", "gen/segments/a")
	wantKeys(t, r, "gen/segments/", "gen/segments/a")
	// A successful Put leaves no temp file behind.
	ents, _ := os.ReadDir(filepath.Join(root, "gen", "segments"))
	if len(ents) != 2 {
		t.Fatalf("dir has %d entries, want the object and the planted temp file", len(ents))
	}
}

func TestFileString(t *testing.T) {
	t.Parallel()
	r, err := Open(context.Background(), "file:///var/backups//tailer/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.String(); got != "file:///var/backups/tailer" {
		t.Fatalf("String() = %q", got)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, want string }{
		{"", "no scheme"},
		{"relative/dir", "no scheme"},
		{"/abs/dir", "no scheme"},
		{"file://relative/dir", "three slashes"},
		{"file:relative", "three slashes"},
		{"file:///a?x=1", "no user, query"},
		{"http://example.com/x", `unsupported scheme "http"`},
		{"s3://", "no bucket"},
		{"s3:///prefix", "no bucket"},
		{"s3://b/p?endpont=http://x", `unknown query key "endpont"`},
		{"s3://b/p?path-style=maybe", "not a boolean"},
		{"s3://b/p?endpoint=127.0.0.1:9000", "endpoint must be"},
		{"s3://b/a//b", "bad prefix"},
		{"s3://b/../x", "bad prefix"},
		{"s3://AKIA:hunter2@b/p", "credentials do not belong"},
		{"gs://b/p", "unsupported scheme"},
	} {
		_, err := Open(context.Background(), c.url, Options{})
		if err == nil {
			t.Errorf("Open(%q): no error", c.url)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) {
			t.Errorf("Open(%q) = %q, want it to mention %q", c.url, msg, c.want)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("Open(%q) leaks the secret: %q", c.url, msg)
		}
		if c.want != "credentials do not belong" && !strings.Contains(msg, "file:///") && !strings.Contains(msg, "known:") && !strings.Contains(msg, "endpoint must be") && !strings.Contains(msg, "boolean") && !strings.Contains(msg, "bad prefix") {
			t.Errorf("Open(%q) = %q: does not say what a valid URL looks like", c.url, msg)
		}
	}
}
