// Package agent is tailer's sidecar loop (`tailer run`): it tails a live
// store through a secondary instance, seals the new WAL batches of every
// poll into a segment in the durable spool, and keeps a full export per
// generation, while an uploader drains the spool into the replica.
//
// State is derived, never remembered: at start the agent lists the replica
// and the spool, continues the newest generation from its last shipped
// batch if that generation still matches the store (same DB identity, an
// unbroken WAL), and otherwise starts a new generation with a fresh export.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/compaction"
	"github.com/tailer-backup/tailer/internal/diskguard"
	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/lease"
	"github.com/tailer-backup/tailer/retention"
	"github.com/tailer-backup/tailer/secondary"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/walpin"
)

// Config is what `tailer run` is given.
type Config struct {
	DB      string // the primary's directory (Stalwart's RocksDb.path)
	Scratch string // tailer's own directory on the primary's filesystem
	Spool   string // durable upload queues, one directory per replica (default: Scratch/spool)
	// Replicas are where to ship; Replica is shorthand for one more (the
	// first). Each gets its own spool, uploader, lease and metrics.
	Replica  uploader.Replica
	Replicas []uploader.Replica
	// Poll is the backstop interval (default 1s): lineage and disk
	// checks, the secondary's catch-up, the gap check when nothing
	// arrives, periodic exports. Batches do not wait for it: they are
	// read as soon as the WAL grows and sealed by MaxDelay.
	Poll time.Duration
	// MaxDelay: a segment is sealed when its oldest batch was read this
	// long ago (default 200ms), so an isolated commit is in the spool
	// about MaxDelay after it was written and in the replica one PUT
	// later. MinPutInterval: segments are not sealed more often than this
	// (0, the default: only MaxDelay and MaxSegmentBytes bound them),
	// trading latency for fewer PUTs; MaxSegmentBytes always seals at
	// once. An idle store seals nothing.
	MaxDelay       time.Duration
	MinPutInterval time.Duration
	ExportInterval time.Duration // default 24h; <= 0 disables periodic exports
	// MaxSegmentBytes caps the raw batch bytes sealed into one segment
	// (default 64 MiB): a burst is shipped as several objects, never one
	// that must be held in memory whole.
	MaxSegmentBytes int
	ShutdownTimeout time.Duration // how long SIGTERM waits for the spool to drain (default 30s)
	// ReadyMaxLag: /readyz fails while the oldest object waiting in the
	// spool is older than this (default 2m): the replica is falling behind.
	ReadyMaxLag time.Duration
	// SpoolMaxBytes caps the spool (0: no cap). When the replica is away
	// long enough to fill it, tailer stops sealing new segments and says
	// so, rather than drop anything: the WAL pins keep the batches, and
	// tailing resumes where it stopped once uploads free room. If the pins
	// could not keep them, the next poll finds a gap and starts a new
	// generation: never a silent hole.
	SpoolMaxBytes int64
	// MinFree is the free space to keep on the filesystems of DB, Scratch
	// and Spool (nil: diskguard.Default, 5%; the zero Threshold: no
	// guard). The spool and the WAL pins live beside the mail server's
	// store, and a mail server that cannot write is worse than a gap in
	// its backup: below MinFree tailer stops sealing and exporting and
	// drops its WAL pins, loudly, until free space is back above MinFree
	// plus 1%; tailing then resumes, and if the store deleted WAL it still
	// needed, the gap starts a new generation. Uploads go on throughout.
	MinFree *diskguard.Threshold
	// FreeSpace measures a filesystem (nil: statfs); tests simulate a full
	// disk with it.
	FreeSpace diskguard.FreeFunc
	// LeaseTTL is the life of the single-writer lease on the replica
	// prefix without renewal (default 30s; negative: no lease, for
	// replicas without conditional writes). LeaseWait is how long to wait
	// for another holder's lease to expire (0: exit at once);
	// ForceTakeover takes a live lease (its holder stops at its next
	// renewal). LeaseMargin: the holder stops uploading this long before
	// the expiry it recorded, unless a renewal was confirmed (0:
	// lease.DefaultMargin); it must exceed the clock skew between hosts.
	LeaseTTL      time.Duration
	LeaseWait     time.Duration
	LeaseMargin   time.Duration
	ForceTakeover bool
	// Compaction configures the maintenance round's merging of narrow
	// segments into wider ones (nil: no compaction; WorkDir defaults to
	// Scratch/compact). Retention deletes what no retained restore point
	// needs (zero: keep all). MaintenanceInterval is how often both run
	// (default 5m; <0: never).
	Compaction          *compaction.Options
	Retention           retention.Policy
	MaintenanceInterval time.Duration
	// PinInterval is how often the primary's directory is scanned for new
	// WAL files to hard-link into Scratch, as a backstop to the directory
	// watch that pins them as they appear (default 50ms; negative disables
	// WAL pinning). Without the watch it must be shorter than a WAL file's
	// life under the primary's heaviest load.
	PinInterval time.Duration
	// Blobs is Stalwart's filesystem blob store, where the mail itself
	// is when Stalwart keeps blobs outside RocksDB ("": none, or found
	// beside an old layout's idx/, see setDefaults). Its files are
	// shipped through the spool as blobs/<name>, each before the first
	// segment or export that references it. BlobDepth is the store's
	// depth (Stalwart's "depth"; nil: blobfs.DefaultDepth).
	// BlobScanInterval is how often the whole store is scanned as a
	// backstop to the directory watch (default 10m).
	Blobs            string
	BlobDepth        *int
	BlobScanInterval time.Duration
	Registry         prometheus.Registerer
	Log              *slog.Logger
	Now              func() time.Time // tests may fix the clock
}

func (c *Config) setDefaults() error {
	if c.DB == "" {
		return setting.Missing("DB", "store directory (Config.DB)", "point it at Stalwart's RocksDB directory")
	}
	if c.Replica != nil {
		c.Replicas = append([]uploader.Replica{c.Replica}, c.Replicas...)
		c.Replica = nil
	}
	if len(c.Replicas) == 0 {
		return setting.Missing("Replicas", "replica (Config.Replicas)", "e.g. s3://bucket/stalwart or file:///backups/stalwart")
	}
	seen := map[string]uploader.Replica{}
	for _, r := range c.Replicas {
		if prev, ok := seen[r.Identity()]; ok {
			if prev.String() == r.String() {
				return fmt.Errorf("replica %s is given twice", r)
			}
			return fmt.Errorf("replicas %s and %s are the same bucket and prefix (%s): give it once", prev, r, r.Identity())
		}
		seen[r.Identity()] = r
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	root := c.DB
	if err := c.oldLayout(); err != nil {
		return err
	}
	if c.Scratch == "" {
		c.Scratch = secondary.DefaultScratch(root)
	}
	if c.Spool == "" {
		c.Spool = filepath.Join(c.Scratch, "spool")
	}
	for _, d := range []struct{ key, name, path string }{{"Scratch", "scratch directory", c.Scratch}, {"Spool", "spool directory", c.Spool}} {
		if secondary.Inside(d.path, c.DB) {
			return setting.Bad(d.key, d.name, d.path, fmt.Sprintf("is inside the primary's directory %s: tailer never writes there; put it beside the store on the same filesystem", c.DB))
		}
		if c.Blobs != "" && (secondary.Inside(d.path, c.Blobs) || secondary.Inside(c.Blobs, d.path)) {
			return setting.Bad(d.key, d.name, d.path, fmt.Sprintf("and the blob store %s are inside one another: tailer never writes in the blob store; put it beside", c.Blobs))
		}
	}
	if err := c.checkBlobs(); err != nil {
		return err
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.MaxSegmentBytes <= 0 {
		c.MaxSegmentBytes = 64 << 20
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.MinPutInterval < 0 {
		c.MinPutInterval = 0
	}
	if c.MaintenanceInterval == 0 {
		c.MaintenanceInterval = 5 * time.Minute
	}
	if err := c.Retention.Validate(); err != nil && (c.Retention.MaxAge != 0 || c.Retention.KeepExports != 0) {
		return fmt.Errorf("retention: %w", err)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.PinInterval == 0 {
		c.PinInterval = 50 * time.Millisecond
	}
	if c.ReadyMaxLag <= 0 {
		c.ReadyMaxLag = 2 * time.Minute
	}
	if c.MinFree == nil {
		d := diskguard.Default
		c.MinFree = &d
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Agent runs the loop. Create it with New, then call Run once.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	targets []*target // one per replica
	sec     *secondary.Secondary
	pins    walpin.Source // reads the WAL; in place (no pins) when pinning is off
	pinStop func()        // stops pinning new WAL files (nil: not pinning)
	guard   *diskguard.Guard
	// diskLow: the disk guard tripped (see Config.MinFree); read by
	// Ready and the maintenance goroutine.
	diskLow atomic.Bool
	// spoolPaused mirrors spoolFull for the blob store's watch.
	spoolPaused atomic.Bool
	blobs       *blobs        // nil: no filesystem blob store
	guardFail   bool          // the last free-space measurement failed (logged once)
	walCur      walpin.Cursor // where the pinned WAL was read up to
	// encoders are the sealer's idle zstd encoders, reused across
	// segments instead of a few MB allocated per segment.
	encoders segment.Encoders
	// lastCatchUp is when the secondary last caught up (see catchUpEvery).
	lastCatchUp time.Time
	// instance identifies this tailer across restarts: the id kept in its
	// scratch dir, which it holds locked while it lives.
	instance    string
	scratchLock *os.File // held from New until Run returns

	// Tailing state, owned by the Run goroutine.
	gen         *generation // current generation; nil: start one
	lastShipped uint64      // newest sequence number sealed into the spool
	waitFor     uint64      // a fresh generation's export seq the secondary has not reached yet
	newGenWhy   string      // non-empty: start a new generation at the next poll
	newestGen   string      // newest generation id in the replica at start (ids must sort after it)
	spoolFull   bool        // sealing paused: the spool reached SpoolMaxBytes
	// The capture pipeline (sealer.go): cont.want-1 is the newest batch
	// read; pend holds those read and not handed to the sealer; queued
	// is the newest handed to it (sealed or in flight); lastShipped only
	// moves when a segment is committed to the spool, so it is what the
	// WAL pins may release and what a restart resumes from.
	cont    continuity
	pend    pending
	queued  uint64
	lastCut time.Time // when the last segment was handed to the sealer
	rule    sealRule
	sealer  *sealer
	wake    *walWake
	rewound bool // a failed seal rewound the reading position during a read

	exports      sync.WaitGroup
	expMu        sync.Mutex
	expBusy      bool
	expCancel    context.CancelFunc
	expFailedGen string // generation whose base export failed
	lastExp      time.Time
	lastOK       atomic.Int64 // unix nanos of the last successful poll
}

// New checks the configuration and opens the spool. The store is opened
// by Run, so that a missing store is reported (and retried) there.
func New(cfg Config) (*Agent, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if _, err := store.ListFamilies(cfg.DB); err != nil {
		return nil, err // a wrong --db is reported before anything starts
	}
	if err := os.MkdirAll(cfg.Scratch, owned.DirMode); err != nil {
		return nil, fmt.Errorf("create scratch dir %s: %w", cfg.Scratch, err)
	}
	lock, instance, err := claimScratch(cfg.Scratch)
	if err != nil {
		return nil, err
	}
	targets, err := openTargets(cfg)
	if err != nil {
		lock.Close()
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Log, targets: targets, m: newMetrics(cfg.Registry), instance: instance, scratchLock: lock,
		rule:  sealRule{maxDelay: cfg.MaxDelay, minInterval: cfg.MinPutInterval, maxBytes: cfg.MaxSegmentBytes},
		guard: diskguard.New(*cfg.MinFree, cfg.FreeSpace, cfg.DB, cfg.Scratch, cfg.Spool)}
	if cfg.Blobs != "" {
		if a.blobs, err = newBlobs(a); err != nil {
			lock.Close()
			return nil, err
		}
	}
	return a, nil
}

// Run tails until ctx is cancelled, then seals what it holds, lets running
// exports stop, drains the spool (bounded by ShutdownTimeout) and returns
// nil. It returns an error only for conditions a restart cannot fix.
func (a *Agent) Run(ctx context.Context) error {
	defer a.scratchLock.Close() // releases the scratch dir for the next tailer
	ctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	// Uploads outlive ctx (SIGTERM drains the spool), and so do the
	// leases' renewals, until Run returns; a lost lease ends both at once,
	// cancelling the uploads under way.
	upCtx, stopUploads := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopUploads(nil)
	if a.cfg.LeaseTTL > 0 {
		if err := a.acquireLeases(ctx, upCtx, func(err error) { stopUploads(err); stopRun(err) }); err != nil {
			return err
		}
	}
	go a.maintain(ctx)
	if a.blobs != nil {
		if err := a.blobs.list(ctx); err != nil { // before any upload: see list
			return err
		}
	}
	stopShippers := a.runShippers(upCtx)
	defer stopShippers()

	expCtx, stopExports := context.WithCancel(ctx)
	defer stopExports()

	if a.cfg.PinInterval > 0 {
		pins, err := walpin.New(a.cfg.DB, filepath.Join(a.cfg.Scratch, "wal-pins"), a.log)
		if err != nil {
			return err
		}
		a.pins = pins
		if err := a.startPinning(ctx); err != nil {
			return err
		}
		defer a.stopPinning()
	} else {
		a.pins = walpin.NewInPlace(a.cfg.DB, a.log)
		a.log.Warn(a.pins.Disabled())
	}
	sec, err := secondary.Open(a.cfg.DB, a.cfg.Scratch)
	if err != nil {
		return err
	}
	a.sec = sec
	defer func() { a.sec.Close() }()
	a.sealer = startSealer(upCtx, a.sealSegment)
	defer a.stopSealer() // before the secondary closes: the sealer reads it

	if err := a.resume(ctx); err != nil {
		return err
	}
	if a.blobs != nil {
		if err := a.blobs.start(ctx); err != nil {
			return err
		}
		defer a.blobs.halt()
	}
	a.wake = startWalWake(ctx, a.cfg.DB, a.log)
	defer a.wake.stop()
	// A WAL file pinned by the watch wakes the reader after it is
	// readable (the store's own watch above may come first).
	a.pins.OnNewFile(a.wake.signal)
	t := time.NewTicker(a.cfg.Poll)
	defer t.Stop()
	cutTimer := time.NewTimer(time.Hour)
	cutTimer.Stop()
	defer cutTimer.Stop()
	backstop := true // the first round is a poll
	var soon <-chan time.Time
	for {
		if backstop {
			if err := a.poll(ctx, expCtx); err != nil && ctx.Err() == nil {
				a.m.pollErrors.Inc()
				a.log.Error("poll failed; retrying at the next poll", "err", err)
			}
		}
		if wait := a.maybeCut(); wait > 0 {
			cutTimer.Reset(wait)
		}
		backstop = false
		switch {
		case a.waitFor == 0:
			soon = nil
		case soon == nil:
			// A fresh generation waits for the secondary to reach its
			// export before capture resumes: check again shortly, not
			// a whole --poll later.
			soon = time.After(catchUpRetry)
		}
		select {
		case <-ctx.Done():
			if cause := context.Cause(ctx); errors.Is(cause, lease.ErrLost) || errors.Is(cause, lease.ErrExpired) || errors.Is(cause, lease.ErrHeld) {
				stopExports()
				a.exports.Wait()
				return fmt.Errorf("stopped without uploading the spool: %w", cause)
			}
			a.flush() // what was read is sealed before the spool drains
			err := a.shutdown(upCtx, stopExports)
			a.releaseLeases()
			return err
		case <-t.C:
			backstop = true
		case <-soon:
			backstop, soon = true, nil
		case <-a.wake.c:
			if err := a.capture(ctx); err != nil && ctx.Err() == nil {
				a.m.pollErrors.Inc()
				a.log.Error("reading the WAL failed; retrying at the next poll", "err", err)
			}
			backstop = a.newGenWhy != "" // a gap: no need to wait for the tick
		case <-cutTimer.C:
		case r := <-a.sealer.results:
			a.sealed(r)
		}
	}
}

// DefaultMaxDelay is Config.MaxDelay's default: at 1,000 tx/s on the
// load generator it keeps a commit's way to the bucket under ~300 ms at
// about 5 segments a second (docs/benchmarks.md).
const DefaultMaxDelay = 200 * time.Millisecond

// setShipped puts the tailing position at seq, with nothing pending: at
// resume and when a generation starts.
func (a *Agent) setShipped(seq uint64) {
	a.lastShipped = seq
	a.m.lastShipped.Set(float64(seq))
	a.rewind(seq)
	a.rewound = false
}

// shutdown stops exports and drains the spool into the replica (upCtx
// ends the drain early if a lease is lost meanwhile).
func (a *Agent) shutdown(upCtx context.Context, stopExports context.CancelFunc) error {
	stopExports()
	a.exports.Wait()
	if a.blobs != nil {
		a.blobs.halt() // nothing is queued while the spool drains
	}
	dctx, cancel := context.WithTimeout(upCtx, a.cfg.ShutdownTimeout)
	defer cancel()
	a.log.Info("stopping: uploading what the spool holds", "last_shipped_seq", a.lastShipped)
	if err := a.drainAll(dctx); err != nil {
		a.log.Warn("stopped with objects still in the spool; they are uploaded at the next start", "spool", a.cfg.Spool, "err", err)
		return nil
	}
	a.log.Info("stopped: everything sealed is in the replica", "last_shipped_seq", a.lastShipped)
	return nil
}

// Ready reports whether the agent is keeping up: a poll succeeded within
// the last three poll intervals, and nothing has waited in the spool for
// longer than ReadyMaxLag. It is safe to call from any goroutine.
func (a *Agent) Ready() (bool, string) {
	last := a.lastOK.Load()
	if last == 0 {
		return false, "no successful catch-up yet"
	}
	if age := a.cfg.Now().Sub(time.Unix(0, last)); age > 3*a.cfg.Poll+time.Second {
		return false, fmt.Sprintf("last successful poll %s ago", age.Round(time.Second))
	}
	if a.diskLow.Load() {
		return false, fmt.Sprintf("free space below --min-free %s: backups paused so the mail server can write", a.cfg.MinFree)
	}
	for _, t := range a.targets {
		if lag, err := t.spool.OldestAge(); err == nil && lag > a.cfg.ReadyMaxLag {
			return false, fmt.Sprintf("replica %s is %s behind (spool not uploaded; --ready-max-lag %s)", t.r, lag.Round(time.Second), a.cfg.ReadyMaxLag)
		}
	}
	return true, ""
}
