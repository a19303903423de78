package wbatch_test

import (
	"bytes"
	"context"
	"path/filepath"
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
	wals, err := loadgen.WriteWAL(context.Background(), filepath.Join(b.TempDir(), "primary"), n)
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range wals {
		if err := walpin.ReadFile(w.Path, w.Number, func(bt []byte) error {
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
