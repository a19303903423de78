package walpin_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/walpin"
)

// stalwartWAL writes n Stalwart-like transactions with memtables big
// enough that nothing is flushed, so every batch stays in the WAL files,
// and returns those files with their log numbers and total size.
func stalwartWAL(b *testing.B, n int) (paths []string, numbers []uint64, size int64) {
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
		fi, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		paths, numbers, size = append(paths, p), append(numbers, num), size+fi.Size()
	}
	return paths, numbers, size
}

// BenchmarkReadFile measures tailer's own reader of RocksDB's log format
// over pinned WAL files of Stalwart-like transactions (page cache warm):
// it is on the path of every batch shipped, and must outpace the primary.
func BenchmarkReadFile(b *testing.B) {
	paths, numbers, size := stalwartWAL(b, 3000)
	b.SetBytes(size)
	b.ReportAllocs()
	var batches int
	for b.Loop() {
		batches = 0
		for i, p := range paths {
			if err := walpin.ReadFile(p, numbers[i], func([]byte) error { batches++; return nil }); err != nil {
				b.Fatal(err)
			}
		}
	}
	if batches < 3000 {
		b.Fatalf("read %d batches, wrote at least 3000", batches)
	}
}
