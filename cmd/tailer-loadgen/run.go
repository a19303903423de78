package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/integration/loadgen"
)

type runFlags struct {
	db             string
	seed           int64
	accounts       int
	tx             int
	duration       time.Duration
	rate           int
	writeBuffer    string
	maxWAL         string
	largeShare     float64
	changesHistory int
	marks          string
	markEvery      int
	flushEvery     int
	reset          bool
	blobs          string
	blobDepth      int
	purgeDelay     time.Duration
}

func newRunCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run --db DIR [--tx N | --duration D] [flags]",
		Short: "Create a fresh Stalwart-like store and write transactions into it",
		Long: `run creates a fresh store in --db and writes transactions until --tx are
written, --duration has passed, or it gets SIGINT/SIGTERM (whichever comes
first; with neither flag it runs until interrupted). Progress goes to stderr
about once a second. With --marks it appends a mark (JSON line: seq, tx,
time, per-family digests) every --mark-every transactions and always one at
the end, also when interrupted. --flush-every flushes every family, which
makes the store delete its WAL files at once (to provoke a WAL gap in a
tailer that lags). With --blobs, message bodies go to a filesystem blob
store in Stalwart's layout (written in place, in several writes, links in
k in Stalwart's order) and marks also record the referenced blobs and a
digest of their files. A blob whose last message is expunged stays on
disk, committed but dead, for --blob-purge-delay before the purge deletes
its file and then its commit key (Stalwart purges on a schedule, daily by
default; 0 purges at once, and then the same seed writes the same files). At the end it prints a summary: transactions by kind,
final sequence number, size on disk.

Sizes accept binary suffixes: 256KiB, 1MiB, 4M, 64k.`,
		Example: `  # 20000 transactions at full speed, a mark every 1000
  tailer-loadgen run --db /tmp/primary --tx 20000 --marks /tmp/marks.jsonl --mark-every 1000

  # a steady 200 tx/s for a minute, flushing (and dropping WALs) every 5000 tx
  tailer-loadgen run --db /tmp/primary --reset --duration 1m --rate 200 --flush-every 5000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLoad(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.db, "db", "", "primary store directory to create (required)")
	fl.Int64Var(&f.seed, "seed", 1, "seed: the same seed and tx count write the same store")
	fl.IntVar(&f.accounts, "accounts", loadgen.DefaultAccounts, "number of mail accounts")
	fl.IntVar(&f.tx, "tx", 0, "stop after this many transactions (0: no limit)")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (0: no limit)")
	fl.IntVar(&f.rate, "rate", 0, "transactions per second (0: as fast as possible)")
	fl.StringVar(&f.writeBuffer, "write-buffer", "1MiB", "memtable size of every column family")
	fl.StringVar(&f.maxWAL, "max-wal-size", "", `WAL size that forces flushes and WAL deletion (default 8 x --write-buffer; "rocksdb" for RocksDB's default, as Stalwart)`)
	fl.Float64Var(&f.largeShare, "large-blob-share", loadgen.DefaultLargeBlobShare, "share of deliveries with a blob above 16834 bytes (stored in blob files)")
	fl.IntVar(&f.changesHistory, "changes-history", loadgen.DefaultChangesHistory, "changelog entries a purge keeps per account and collection")
	fl.StringVar(&f.marks, "marks", "", "append marks to this JSON-lines file")
	fl.IntVar(&f.markEvery, "mark-every", 0, "append a mark every N transactions (needs --marks; 0: only the final one)")
	fl.IntVar(&f.flushEvery, "flush-every", 0, "flush every family every N transactions, deleting the WAL files (0: never)")
	fl.BoolVar(&f.reset, "reset", false, "destroy a RocksDB store already in --db instead of refusing")
	fl.StringVar(&f.blobs, "blobs", "", "put message bodies in a Stalwart filesystem blob store in this directory (absent or empty) instead of family t")
	fl.IntVar(&f.blobDepth, "blob-depth", blobfs.DefaultDepth, "directory depth of the --blobs store (Stalwart's depth; 0 to 5)")
	fl.DurationVar(&f.purgeDelay, "blob-purge-delay", defaultPurgeDelay, "how long a dead blob (no link left) stays on disk before the purge deletes it (0: at once)")
	return cmd
}

// defaultPurgeDelay stands in for Stalwart's scheduled (daily) blob purge
// at a test's scale: long enough for a backup to copy a blob whose
// message is expunged right after delivery, short enough that a run of a
// minute sees purges.
const defaultPurgeDelay = 5 * time.Second

func (f *runFlags) config() (loadgen.Config, error) {
	if f.db == "" {
		return loadgen.Config{}, errors.New("no --db given: name the directory of the store to create")
	}
	if f.markEvery > 0 && f.marks == "" {
		return loadgen.Config{}, errors.New("--mark-every needs --marks FILE")
	}
	if f.blobDepth < 0 {
		return loadgen.Config{}, fmt.Errorf("--blob-depth %d: want 0 to %d", f.blobDepth, blobfs.MaxDepth)
	}
	if f.purgeDelay < 0 {
		return loadgen.Config{}, fmt.Errorf("--blob-purge-delay %v: want 0 (purge at once) or more", f.purgeDelay)
	}
	if f.tx < 0 || f.rate < 0 || f.duration < 0 || f.markEvery < 0 || f.flushEvery < 0 {
		return loadgen.Config{}, errors.New("--tx, --rate, --duration, --mark-every and --flush-every cannot be negative")
	}
	wb, err := parseSize(f.writeBuffer)
	if err != nil {
		return loadgen.Config{}, fmt.Errorf("--write-buffer: %w", err)
	}
	cfg := loadgen.Config{
		Dir: f.db, Seed: f.seed, Accounts: f.accounts, WriteBufferSize: uint64(wb),
		LargeBlobShare: f.largeShare, ChangesHistory: f.changesHistory, Reset: f.reset,
		BlobDir: f.blobs, BlobDepth: f.blobDepth, BlobPurgeDelay: f.purgeDelay,
	}
	if f.blobDepth == 0 {
		cfg.BlobDepth = -1 // explicit 0: no directory levels
	}
	if f.largeShare == 0 {
		cfg.LargeBlobShare = -1 // explicit 0 on the command line: no large blobs
	}
	switch strings.ToLower(f.maxWAL) {
	case "":
	case "rocksdb", "default", "-1":
		cfg.MaxTotalWALSize = -1
	default:
		n, err := parseSize(f.maxWAL)
		if err != nil {
			return cfg, fmt.Errorf("--max-wal-size: %w", err)
		}
		cfg.MaxTotalWALSize = n
	}
	return cfg, nil
}

func runLoad(cmd *cobra.Command, f *runFlags) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()

	var g *loadgen.Generator
	start := time.Now()
	p := progress{w: stderr, start: start, last: start}
	var lastMark uint64
	takeMark := func() error {
		m, err := g.Mark(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
		if m.Seq == lastMark {
			return nil
		}
		lastMark = m.Seq
		return loadgen.AppendMark(f.marks, m)
	}
	cfg.AfterTx = func(tx loadgen.Tx) error {
		n := tx.N + 1
		if f.flushEvery > 0 && n%f.flushEvery == 0 {
			if err := g.Flush(); err != nil {
				return err
			}
		}
		if f.markEvery > 0 && n%f.markEvery == 0 {
			if err := takeMark(); err != nil {
				return err
			}
		}
		p.tick(n, tx.LastSeq)
		return nil
	}
	g, err = loadgen.Open(cfg)
	if errors.Is(err, loadgen.ErrExists) {
		return fmt.Errorf("%w; pass --reset for that", err)
	}
	if err != nil {
		return err
	}
	defer g.Close()
	if f.duration > 0 { // counted from the first transaction, not from Open
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	start = time.Now()
	p.start, p.last = start, start

	_, runErr := g.Run(ctx, f.tx, f.rate)
	if errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) {
		runErr = nil // interrupted or --duration over: a normal end
	}
	if f.marks != "" {
		if err := takeMark(); err != nil && runErr == nil {
			runErr = err
		}
	}
	elapsed := time.Since(start)
	seq := g.Store().DB.GetLatestSequenceNumber()
	if err := g.Close(); err != nil && runErr == nil {
		runErr = err
	}
	printSummary(stdout, g, seq, elapsed, f.marks)
	return runErr
}

// progress prints one line about once a second.
type progress struct {
	w           io.Writer
	start, last time.Time
	lastN       int
}

func (p *progress) tick(n int, seq uint64) {
	now := time.Now()
	if now.Sub(p.last) < time.Second {
		return
	}
	rate := float64(n-p.lastN) / now.Sub(p.last).Seconds()
	fmt.Fprintf(p.w, "%8s  tx %d  %.0f tx/s  seq %d\n", now.Sub(p.start).Round(time.Second), n, rate, seq)
	p.last, p.lastN = now, n
}

func printSummary(w io.Writer, g *loadgen.Generator, seq uint64, elapsed time.Duration, marks string) {
	counts := g.Counts()
	n := g.TxCount()
	fmt.Fprintf(w, "wrote %d transactions in %s (%.0f tx/s)\n", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	for _, k := range loadgen.Kinds() {
		fmt.Fprintf(w, "  %-16s %8d\n", k, counts[k])
	}
	fmt.Fprintf(w, "final seq  %d\n", seq)
	size, files := dirSize(g.Dir())
	fmt.Fprintf(w, "store      %s (%d bytes)\n", g.Dir(), size)
	for _, ext := range []string{".sst", ".blob", ".log"} {
		fmt.Fprintf(w, "  %-6s %4d files %12d bytes\n", ext, files[ext].n, files[ext].bytes)
	}
	if marks != "" {
		fmt.Fprintf(w, "marks      %s\n", marks)
	}
}

type fileStat struct {
	n     int
	bytes int64
}

// dirSize sums the regular files in dir, per extension too. Files RocksDB
// deletes during the walk are skipped.
func dirSize(dir string) (int64, map[string]fileStat) {
	var total int64
	by := map[string]fileStat{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		total += info.Size()
		s := by[filepath.Ext(path)]
		s.n++
		s.bytes += info.Size()
		by[filepath.Ext(path)] = s
		return nil
	})
	return total, by
}

// parseSize reads a byte count with an optional binary suffix: 65536,
// 64k, 64KiB, 1M, 1MiB, 1G (all powers of 1024).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
	} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size: use e.g. 262144, 256KiB or 1MiB", s)
	}
	return n * mult, nil
}
