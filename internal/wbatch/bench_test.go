package wbatch_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/walpin"
)

// stalwartBatches returns the WriteBatches of n Stalwart-like
// transactions as RocksDB wrote them in the WAL, so the benchmarks parse
// real batches (merges, range deletes, blob-sized values), not synthetic
// ones.
func stalwartBatches(b *testing.B, n int) (batches [][]byte, size int64) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "primary")
	g, err := loadgen.Open(loadgen.Config{Dir: dir, Seed: 1, WriteBufferSize: 256 << 20, MaxTotalWALSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := g.Run(context.Background(), n, 0); err != nil {
		b.Fatal(err)
	}
	g.Close() // no flush: the WAL keeps every batch
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, p := range logs {
		num, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(p), ".log"), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		if err := walpin.ReadFile(p, num, func(bt []byte) error {
			batches = append(batches, bytes.Clone(bt))
			size += int64(len(bt))
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if len(batches) < n {
		b.Fatalf("found %d batches in the WAL, wrote %d", len(batches), n)
	}
	return batches, size
}

// BenchmarkEach measures walking every record of real batches without
// copying them: what tailer does to label segments from Stalwart's
// changelog.
func BenchmarkEach(b *testing.B) {
	batches, size := stalwartBatches(b, 2000)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, bt := range batches {
			if err := wbatch.Each(bt, func(wbatch.Record) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRecords measures parsing real batches into a slice of
// records, as restore's replay and the changelog labelling use them.
func BenchmarkRecords(b *testing.B) {
	batches, size := stalwartBatches(b, 2000)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, bt := range batches {
			if _, err := wbatch.Records(bt); err != nil {
				b.Fatal(err)
			}
		}
	}
}
