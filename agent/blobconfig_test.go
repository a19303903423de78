package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/uploader"
)

func mkStore(t *testing.T, dir string) {
	t.Helper()
	st, err := store.OpenWritable(dir, []string{"k"}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// TestBlobConfig: --db naming an old layout's db-path (idx/ + blobs/)
// backs up both, with one log line; a plain store is left as it is; a
// bad blob store is refused with ErrBlobs.
func TestBlobConfig(t *testing.T) {
	rep, err := uploader.Open(context.Background(), "file://"+filepath.Join(t.TempDir(), "b"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := t.TempDir()
	mkStore(t, filepath.Join(old, "idx"))
	os.Mkdir(filepath.Join(old, "blobs"), 0o755)
	plain := t.TempDir()
	mkStore(t, filepath.Join(plain, "db"))
	other := t.TempDir()
	three := 3
	tests := []struct {
		name                   string
		cfg                    Config
		db, blobs, scratch, in string
		depth                  int
		err                    error
	}{
		{"old layout", Config{DB: old}, filepath.Join(old, "idx"), filepath.Join(old, "blobs"), old + ".tailer", "old layout", 2, nil},
		{"old layout, depth and blobs given", Config{DB: old, Blobs: other, BlobDepth: &three}, filepath.Join(old, "idx"), other, old + ".tailer", "old layout", 3, nil},
		{"plain store", Config{DB: filepath.Join(plain, "db")}, filepath.Join(plain, "db"), "", filepath.Join(plain, "db.tailer"), "", 0, nil},
		{"plain store and a blob store", Config{DB: filepath.Join(plain, "db"), Blobs: other}, filepath.Join(plain, "db"), other, filepath.Join(plain, "db.tailer"), "", 2, nil},
		{"missing blob store", Config{DB: filepath.Join(plain, "db"), Blobs: filepath.Join(other, "nope")}, "", "", "", "", 0, ErrBlobs},
		{"blob store is the store", Config{DB: filepath.Join(plain, "db"), Blobs: filepath.Join(plain, "db")}, "", "", "", "", 0, ErrBlobs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := tc.cfg
			c.Replica, c.Log = rep, slog.New(slog.NewTextHandler(&logs, nil))
			err := c.setDefaults()
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("setDefaults = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DB != tc.db || c.Blobs != tc.blobs || c.Scratch != tc.scratch {
				t.Fatalf("db %s blobs %s scratch %s; want %s %s %s", c.DB, c.Blobs, c.Scratch, tc.db, tc.blobs, tc.scratch)
			}
			if tc.blobs != "" && *c.BlobDepth != tc.depth {
				t.Fatalf("depth %d, want %d", *c.BlobDepth, tc.depth)
			}
			if lines := strings.Count(logs.String(), "old layout"); (tc.in != "") != (lines == 1) {
				t.Fatalf("log %q: want one line about the old layout: %v", logs.String(), tc.in != "")
			}
		})
	}
}
