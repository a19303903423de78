package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// bigExport writes an export of generation "g" at seq 7 whose body (about
// 1 MiB of incompressible values) takes several read-ahead buffers, so a
// full read streams.
func bigExport(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := segment.NewExportWriter(&buf, segment.Header{Kind: segment.KindExport, Generation: "g", DBIdentity: "id",
		FirstSeq: 7, LastSeq: 7, Created: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Families: []segment.Family{{ID: 0, Name: "default"}}, Compression: segment.CompressionZstd})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 256 {
		v := make([]byte, 4096)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		if err := w.Add(0, fmt.Appendf(nil, "key-%06d", i), v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyExport(t *testing.T) {
	ctx := context.Background()
	good := bigExport(t)
	hdrEnd := 14 + int(binary.LittleEndian.Uint32(good[10:14]))
	bodyLen := int(binary.LittleEndian.Uint64(good[len(good)-24:]))
	flip := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] ^= 1
		return b
	}
	tests := []struct {
		name    string
		data    []byte
		gen     string
		seq     uint64
		wantErr error // nil: verifies
	}{
		{"intact", good, "g", 7, nil},
		{"a flipped bit early in the body", flip(hdrEnd + 10), "g", 7, segment.ErrCorrupt},
		{"a flipped bit late in the body", flip(hdrEnd + bodyLen - 10), "g", 7, segment.ErrCorrupt},
		{"a flipped bit in the header", flip(20), "g", 7, segment.ErrCorrupt},
		{"truncated", good[:len(good)-100], "g", 7, segment.ErrCorrupt},
		{"under another generation's key", good, "h", 7, ErrWrongPlace},
		{"under another sequence's key", good, "g", 8, ErrWrongPlace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := uploader.Open(ctx, "file://"+filepath.Join(t.TempDir(), "bucket"), uploader.Options{})
			if err != nil {
				t.Fatal(err)
			}
			key := layout.ExportKey(tc.gen, tc.seq)
			if err := r.Put(ctx, key, bytes.NewReader(tc.data), int64(len(tc.data))); err != nil {
				t.Fatal(err)
			}
			_, err = VerifyExport(ctx, r, tc.gen, layout.Export{Object: layout.Object{Key: key, Size: int64(len(tc.data))}, Seq: tc.seq})
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("does not verify: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestStreamReaderAt: whatever the order and size of reads, the bytes are
// the object's, and a cancelled context stops reads.
func TestStreamReaderAt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := uploader.Open(ctx, "file://"+filepath.Join(t.TempDir(), "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := bigExport(t)
	if err := r.Put(ctx, "obj", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	s := &streamReaderAt{ctx: ctx, r: r, key: "obj"}
	defer s.close()
	rng := rand.New(rand.NewPCG(3, 4))
	type read struct{ off, n int }
	reads := []read{{0, 14}, {len(data) - 24, 24}, {100, 300 << 10}, {100 + 300<<10, 200 << 10}, {50, 70 << 10}, {0, len(data)}}
	for range 50 {
		n := 1 + rng.IntN(200<<10)
		reads = append(reads, read{rng.IntN(len(data) - n), n})
	}
	for _, rd := range reads {
		p := make([]byte, rd.n)
		n, err := s.ReadAt(p, int64(rd.off))
		if err != nil || n != rd.n || !bytes.Equal(p, data[rd.off:rd.off+rd.n]) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; or other bytes than the object's", rd.n, rd.off, n, err)
		}
	}
	if _, err := s.ReadAt(make([]byte, 10), int64(len(data)-5)); err == nil {
		t.Fatal("a read past the end succeeded")
	}
	cancel()
	if _, err := s.ReadAt(make([]byte, 100<<10), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: err = %v", err)
	}
}
