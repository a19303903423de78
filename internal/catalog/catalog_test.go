package catalog

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/spool"
)

// TestReadMetaBounded: a generation.json planted in the bucket is read
// into memory only up to layout.MaxMetaLen; a larger one is refused.
func TestReadMetaBounded(t *testing.T) {
	ctx := context.Background()
	r, err := uploader.Open(ctx, "file://"+filepath.Join(t.TempDir(), "b"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := layout.MetaKey("20261122T213000.000Z-3f9a1c")
	ok := []byte(`{"id":"20261122T213000.000Z-3f9a1c","format_version":1}`)
	huge := append(append([]byte(nil), ok...), bytes.Repeat([]byte(" "), 4*layout.MaxMetaLen)...)
	tests := []struct {
		name    string
		content []byte
		wantErr error
	}{
		{"small", ok, nil},
		{"four times the limit", huge, ErrTooLarge},
	}
	for _, tc := range tests {
		if err := r.Put(ctx, key, bytes.NewReader(tc.content), int64(len(tc.content))); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := ReadMeta(ctx, r, key)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, tc.wantErr) || (err == nil && m.ID != "20261122T213000.000Z-3f9a1c") {
			t.Errorf("%s: ReadMeta = %+v, %v; want error %v", tc.name, m, err, tc.wantErr)
		}
		if n, bound := after.TotalAlloc-before.TotalAlloc, uint64(3*layout.MaxMetaLen); n > bound {
			t.Errorf("%s: ReadMeta allocated %d MiB, more than %d MiB", tc.name, n>>20, bound>>20)
		}
	}
}

// TestListSpoolBlobs: blob objects waiting in the spool (blobs/<name>,
// outside the generations) are neither generations nor "objects tailer
// did not write": the replica's LIST of generations/ does not see them
// either.
func TestListSpoolBlobs(t *testing.T) {
	ctx := context.Background()
	r, err := uploader.Open(ctx, "file://"+filepath.Join(t.TempDir(), "b"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.OpenSpool(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	meta := layout.MetaKey("20261122T213000.000Z-3f9a1c")
	for _, key := range []string{layout.BlobKey(blobfs.Sum([]byte("mail"))), meta} {
		if err := sp.Add(key, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	gens, unknown, err := List(ctx, r, sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 0 || len(gens) != 1 || gens[0].MetaKey != meta {
		t.Fatalf("List = %+v, unknown %v; want one generation and nothing unknown", gens, unknown)
	}
}
