package catalog

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/uploader"
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
