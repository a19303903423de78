package export_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/tailer-backup/tailer/export"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/segment"
)

// countingWriter discards the export but counts its bytes.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)

// BenchmarkWrite measures streaming a whole Stalwart-like store (every
// family, blob files included) into a zstd export, page cache warm;
// throughput is in raw key+value bytes read. It bounds how long a
// generation's base export takes and what it costs the primary's disk.
func BenchmarkWrite(b *testing.B) {
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(b.TempDir(), "primary"), Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	if _, err := g.Run(ctx, 4000, 0); err != nil {
		b.Fatal(err)
	}
	if err := g.Flush(); err != nil {
		b.Fatal(err)
	}
	st := g.Store()
	seq := st.DB.GetLatestSequenceNumber()
	hdr := segment.Header{Generation: "bench", DBIdentity: "bench", Compression: segment.CompressionZstd}
	var res export.Result
	b.ReportAllocs()
	for b.Loop() {
		var w countingWriter
		if res, err = export.Write(ctx, st, seq, hdr, &w, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(res.Stats.RawBytes)
	b.ReportMetric(float64(res.Stats.Written)/float64(res.Stats.RawBytes), "ratio")
}
