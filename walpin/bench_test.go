package walpin_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/walpin"
)

// stalwartWAL writes n Stalwart-like transactions with memtables big
// enough that nothing is flushed, so every batch stays in the WAL files,
// and returns those files with their log numbers and total size.
func stalwartWAL(b *testing.B, n int) (paths []string, numbers []uint64, size int64) {
	b.Helper()
	wals, err := loadgen.WriteWAL(context.Background(), filepath.Join(b.TempDir(), "primary"), n)
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range wals {
		fi, err := os.Stat(w.Path)
		if err != nil {
			b.Fatal(err)
		}
		paths, numbers, size = append(paths, w.Path), append(numbers, w.Number), size+fi.Size()
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
