package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/store"
)

// ErrExists is wrapped when the directory already holds a store and Reset
// is not set; a front end names its own way to set it.
var ErrExists = errors.New("the store exists")

// Transaction kinds, as reported in Tx.Kind and Counts.
const (
	KindDelivery       = "delivery"
	KindFlagChange     = "flag-change"
	KindExpunge        = "expunge"
	KindChangelogPurge = "changelog-purge"
	KindCounterCleanup = "counter-cleanup"
	KindChurn          = "churn"
)

// Kinds lists every transaction kind in a stable order, for summaries.
func Kinds() []string {
	return []string{KindDelivery, KindFlagChange, KindExpunge, KindChangelogPurge, KindCounterCleanup, KindChurn}
}

// Tx describes one written transaction: one WriteBatch whose records got
// the sequence numbers FirstSeq..LastSeq (one per record, as RocksDB
// assigns them), so a test can name the state before or after it.
type Tx struct {
	// N is the transaction's number (0-based); with the seed it determines
	// the content.
	N    int    `json:"n"`
	Kind string `json:"kind"`
	// FirstSeq and LastSeq are the sequence numbers of the batch.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// Account is the (first) account whose data changed, 0 for kinds that
	// touch no account (purge, cleanup, churn).
	Account uint32 `json:"account,omitempty"`
	// ChangeID is Account's new change id, written to n and l in the batch;
	// 0 when the transaction wrote no changelog entry.
	ChangeID uint64 `json:"change_id,omitempty"`
	// Records is the number of records in the batch.
	Records int `json:"records"`
}

// Generator writes a Stalwart-like primary store. It is not safe for
// concurrent use: call it from one goroutine, as its in-memory model of
// the store (live messages, blobs, change ids, counters) must follow the
// writes in order. Other goroutines (tailer) may read the directory.
type Generator struct {
	cfg    Config
	s      *store.Store
	wo     *grocksdb.WriteOptions
	wb     *grocksdb.WriteBatch
	h      handles
	blobs  *blobfs.Layout // nil: blobs go to family t
	m      *model
	n      int
	counts map[string]int
	// failed is set when a write failed after the model was updated: the
	// model no longer matches the store, so every later call refuses.
	failed error
}

type handles struct {
	n, u, y, t, i, f, j, k, m, p, q, b, l *grocksdb.ColumnFamilyHandle
}

// Open creates a fresh primary in cfg.Dir with Stalwart 0.16's families
// and options, and writes the schema version (p/0x00 = 6) as Stalwart does
// on first start. A Dir that is not empty and not a RocksDB store is an
// error; a RocksDB store there is destroyed only with cfg.Reset.
func Open(cfg Config) (*Generator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := prepareDir(cfg.Dir, cfg.Reset); err != nil {
		return nil, err
	}
	tune := func(o *grocksdb.Options) {
		o.SetWriteBufferSize(cfg.WriteBufferSize)
		o.SetMaxWriteBufferNumber(2)
		if cfg.MaxTotalWALSize > 0 {
			o.SetMaxTotalWalSize(uint64(cfg.MaxTotalWALSize))
		}
	}
	var blobs *blobfs.Layout
	if cfg.BlobDir != "" {
		if blobs, err = openBlobDir(cfg.BlobDir, cfg.BlobDepth); err != nil {
			return nil, err
		}
	}
	s, err := store.OpenWritable(cfg.Dir, stalwart.Families016, true, tune)
	if err != nil {
		return nil, err
	}
	g := &Generator{
		cfg:    cfg,
		s:      s,
		blobs:  blobs,
		wo:     grocksdb.NewDefaultWriteOptions(),
		wb:     grocksdb.NewWriteBatch(),
		m:      newModel(cfg.Accounts),
		counts: make(map[string]int),
	}
	for _, x := range []struct {
		name string
		h    **grocksdb.ColumnFamilyHandle
	}{
		{"n", &g.h.n}, {"u", &g.h.u}, {"y", &g.h.y}, {"t", &g.h.t}, {"i", &g.h.i},
		{"f", &g.h.f}, {"j", &g.h.j}, {"k", &g.h.k}, {"m", &g.h.m}, {"p", &g.h.p},
		{"q", &g.h.q}, {"b", &g.h.b}, {"l", &g.h.l},
	} {
		if *x.h = s.Handle(x.name); *x.h == nil {
			g.Close()
			return nil, fmt.Errorf("loadgen: store in %s has no family %q", cfg.Dir, x.name)
		}
	}
	g.wb.PutCF(g.h.p, []byte{0}, binary.BigEndian.AppendUint32(nil, schemaVersion016))
	if err := s.DB.Write(g.wo, g.wb); err != nil {
		g.Close()
		return nil, fmt.Errorf("loadgen: write schema version: %w", err)
	}
	g.wb.Clear()
	return g, nil
}

// prepareDir refuses to write into a directory holding anything but a
// RocksDB store, and destroys a store only when asked to.
func prepareDir(dir string, reset bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return fmt.Errorf("loadgen: %w", err)
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "CURRENT")); err != nil {
		return fmt.Errorf("loadgen: %s is not empty and not a RocksDB store; refusing to write there", dir)
	}
	if !reset {
		return fmt.Errorf("loadgen: %s already holds a RocksDB store; set Reset to destroy it and start a fresh one (%w)", dir, ErrExists)
	}
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	if err := grocksdb.DestroyDb(dir, o); err != nil {
		return fmt.Errorf("loadgen: destroy %s: %w", dir, err)
	}
	return os.MkdirAll(dir, 0o755)
}

// Store returns the open primary, for reads (Get, digests); writing to it
// directly would desynchronise the generator's model.
func (g *Generator) Store() *store.Store { return g.s }

// Dir returns the primary's directory.
func (g *Generator) Dir() string { return g.cfg.Dir }

// TxCount returns the number of transactions written.
func (g *Generator) TxCount() int { return g.n }

// Counts returns the number of transactions written per kind.
func (g *Generator) Counts() map[string]int {
	out := make(map[string]int, len(g.counts))
	for k, v := range g.counts {
		out[k] = v
	}
	return out
}

// Tx writes one transaction as one WriteBatch with default WriteOptions
// (WAL on, not synced), as Stalwart does. With a blob directory, a
// delivery also writes its blob's temporary link and commit key in
// batches of their own before it, and a blob purge its key deletes after
// it, as Stalwart does; FirstSeq..LastSeq then spans them all.
func (g *Generator) Tx(ctx context.Context) (Tx, error) {
	if g.failed != nil {
		return Tx{}, g.failed
	}
	if g.s == nil {
		return Tx{}, errors.New("loadgen: generator is closed")
	}
	if err := ctx.Err(); err != nil {
		return Tx{}, err
	}
	rng := rand.New(rand.NewPCG(uint64(g.cfg.Seed), uint64(g.n)))
	g.wb.Clear()
	tx := Tx{N: g.n, FirstSeq: g.s.DB.GetLatestSequenceNumber() + 1}
	b := &builder{g: g, rng: rng, tx: tx, now: g.cfg.Clock()}
	b.build()
	tx = b.tx
	if b.err == nil {
		b.err = g.s.DB.Write(g.wo, g.wb)
	}
	for _, f := range b.after {
		f()
	}
	if b.err != nil {
		g.failed = fmt.Errorf("loadgen: tx %d (%s): %w", g.n, tx.Kind, b.err)
		return Tx{}, g.failed
	}
	tx.Records = g.wb.Count() + b.extra
	tx.LastSeq = g.s.DB.GetLatestSequenceNumber()
	g.wb.Clear()
	g.n++
	g.counts[tx.Kind]++
	return tx, nil
}

// Run writes n transactions (n <= 0: until ctx is done) at up to rate
// transactions per second (0: as fast as possible) and returns how many it
// wrote. Stopping on ctx is not an error when n <= 0; with n > 0 an early
// stop returns ctx's error. Config.AfterTx runs after each transaction.
func (g *Generator) Run(ctx context.Context, n int, rate int) (int, error) {
	start := time.Now()
	done := 0
	for n <= 0 || done < n {
		if rate > 0 {
			due := start.Add(time.Duration(float64(done) * float64(time.Second) / float64(rate)))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
				case <-t.C:
				}
			}
		}
		if ctx.Err() != nil {
			if n <= 0 {
				return done, nil
			}
			return done, ctx.Err()
		}
		tx, err := g.Tx(ctx)
		if err != nil {
			return done, err
		}
		done++
		if g.cfg.AfterTx != nil {
			if err := g.cfg.AfterTx(tx); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// Flush flushes every family, waits for the flushes, then waits (up to
// a minute) until RocksDB has deleted every WAL file but the live one:
// tests use it to make WAL files disappear under a tailer that has not
// read them yet, and RocksDB deletes obsolete WALs in the background just
// after a flush completes.
func (g *Generator) Flush() error {
	if g.s == nil {
		return errors.New("loadgen: generator is closed")
	}
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	cfs := make([]*grocksdb.ColumnFamilyHandle, 0, len(g.s.Families))
	for _, f := range g.s.Families {
		cfs = append(cfs, f.Handle)
	}
	if err := g.s.DB.FlushCFs(cfs, fo); err != nil {
		return fmt.Errorf("loadgen: flush: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		logs, err := walFiles(g.cfg.Dir)
		if err != nil {
			return err
		}
		if len(logs) <= 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadgen: flush: %d WAL files still in %s a minute after flushing every family", len(logs), g.cfg.Dir)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// walFiles lists the WAL files (*.log) in dir.
func walFiles(dir string) ([]string, error) {
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return logs, nil
}

// Close closes the primary. It does not flush: like a Stalwart that stops,
// the store keeps its WAL for the next open.
func (g *Generator) Close() error {
	if g.s == nil {
		return nil
	}
	g.s.Close()
	g.s = nil
	g.wb.Destroy()
	g.wo.Destroy()
	return nil
}
