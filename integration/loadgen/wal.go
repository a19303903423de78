package loadgen

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// WALFile is one WAL file of a store the generator wrote.
type WALFile struct {
	Path   string
	Number uint64 // the log number, from the name (000012.log is 12)
}

// WriteWAL writes n transactions into a new store in dir with memtables
// big enough that nothing is flushed, closes it, and returns its WAL
// files in order: every batch written is still in them. Benchmarks of
// WAL readers and batch decoders use it for real Stalwart-like batches.
func WriteWAL(ctx context.Context, dir string, n int) ([]WALFile, error) {
	g, err := Open(Config{Dir: dir, Seed: 1, WriteBufferSize: 256 << 20, MaxTotalWALSize: -1})
	if err != nil {
		return nil, err
	}
	if _, err := g.Run(ctx, n, 0); err != nil {
		g.Close()
		return nil, err
	}
	g.Close() // no flush: the WAL keeps every batch
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	var out []WALFile
	for _, p := range logs {
		num, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(p), ".log"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("WAL file name %s: %w", p, err)
		}
		out = append(out, WALFile{Path: p, Number: num})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}
