package uploader

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Shipper drains a Spool into a Replica. It uploads oldest first, retries
// a failing upload forever with capped exponential backoff and jitter (a
// bucket outage must delay backups, not drop them), and removes a spool
// file only after Put returned nil. It logs once per state change (ok →
// failing → ok), not per retry, so an hour-long outage is two log lines.
type Shipper struct {
	spool   *Spool
	replica Replica
	log     *slog.Logger
	metrics *ShipperMetrics
	wake    chan struct{}

	// Retry and polling timing; tests shorten them.
	minBackoff, maxBackoff time.Duration
	rescan                 time.Duration // safety net for a missed Notify

	upload sync.Mutex // held per object, so Run and Drain never upload one twice
	guard  func() error

	stateMu       sync.Mutex
	failing       bool
	failingSince  time.Time
	failedAttempt int
}

// NewShipper returns a Shipper from s to r. Its metrics are registered on
// reg (nil: not registered); log may be nil to discard logs.
func NewShipper(s *Spool, r Replica, reg prometheus.Registerer, log *slog.Logger) *Shipper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Shipper{
		spool:      s,
		replica:    r,
		log:        log.With("replica", r.String()),
		metrics:    NewShipperMetrics(reg, s),
		wake:       make(chan struct{}, 1),
		minBackoff: 500 * time.Millisecond,
		maxBackoff: 30 * time.Second,
		rescan:     30 * time.Second,
	}
}

// Metrics returns the Shipper's collectors, e.g. for tests.
func (sh *Shipper) Metrics() *ShipperMetrics { return sh.metrics }

// ErrGuarded is wrapped by Drain when the guard (see Guard) refused
// uploads: what is left stays in the spool.
var ErrGuarded = errors.New("uploads refused by the shipper's guard")

// Guard makes the Shipper call check right before each upload and upload
// nothing while it returns an error: the agent passes its single-writer
// lease's Check, so a tailer whose lease lapsed stops writing to the
// replica at once, even before it has been told. Objects stay in the
// spool. Cancelling the context of Run or Drain aborts uploads already
// under way. Call Guard before Run and Drain.
func (sh *Shipper) Guard(check func() error) { sh.guard = check }

// Notify tells the Shipper a spool entry was committed, so it ships within
// milliseconds instead of at its next periodic rescan. It never blocks.
func (sh *Shipper) Notify() {
	select {
	case sh.wake <- struct{}{}:
	default: // a wake-up is already pending; it will see this entry too
	}
}

// Run ships until ctx is done, starting with whatever is pending (objects
// left by a previous process), then waiting for Notify or a periodic
// rescan. Failures are retried, never returned: Run returns nil once ctx
// is done. An upload interrupted by ctx stays in the spool.
func (sh *Shipper) Run(ctx context.Context) error {
	t := time.NewTicker(sh.rescan)
	defer t.Stop()
	for {
		sh.shipAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-sh.wake:
		case <-t.C:
		}
	}
}

// Drain uploads everything pending and returns nil when the spool is
// empty, or an error saying what is left when ctx ends first. Used on
// SIGTERM (after producers stopped) and by `tailer export`. It may run
// while Run does.
func (sh *Shipper) Drain(ctx context.Context) error {
	if err := sh.shipAll(ctx); err != nil {
		return fmt.Errorf("drain spool %s to %s: %w", sh.spool.Dir(), sh.replica, err)
	}
	if err := ctx.Err(); err != nil {
		ents, lerr := sh.spool.Pending()
		if lerr != nil {
			return fmt.Errorf("drain spool %s to %s: %w (and %w)", sh.spool.Dir(), sh.replica, err, lerr)
		}
		var n int64
		for _, e := range ents {
			n += e.Size
		}
		return fmt.Errorf("drain spool %s to %s: %d objects (%d bytes) still pending: %w",
			sh.spool.Dir(), sh.replica, len(ents), n, err)
	}
	return nil
}

// shipAll uploads until the spool is empty or ctx ends. A failure backs
// off and starts again from the oldest entry, which keeps uploads in
// commit order. It returns an error (wrapping ErrGuarded) only when the
// guard refuses.
func (sh *Shipper) shipAll(ctx context.Context) error {
	attempt := 0
	for ctx.Err() == nil {
		ents, err := sh.spool.Pending()
		if err == nil && len(ents) == 0 {
			return nil
		}
		for _, e := range ents {
			if err = sh.shipOne(ctx, e); err != nil {
				break
			}
			sh.succeeded()
			attempt = 0
		}
		if err == nil {
			continue // look for entries committed meanwhile
		}
		if errors.Is(err, ErrGuarded) {
			sh.log.Debug("not uploading", "err", err)
			return err
		}
		if ctx.Err() != nil {
			return nil // shutting down, not a replica failure
		}
		attempt++
		sh.metrics.UploadErrors.Inc()
		sh.failed(err, attempt)
		if !sleepCtx(ctx, sh.backoff(attempt)) {
			return nil
		}
	}
	return nil
}

// shipOne uploads one entry and removes it from the spool.
func (sh *Shipper) shipOne(ctx context.Context, e SpoolEntry) error {
	sh.upload.Lock()
	defer sh.upload.Unlock()
	f, err := os.Open(e.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // shipped meanwhile by a concurrent Run or Drain
	}
	if err != nil {
		return fmt.Errorf("ship %s: %w", e.Key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("ship %s: %w", e.Key, err)
	}
	if sh.guard != nil {
		if err := sh.guard(); err != nil {
			return fmt.Errorf("ship %s: %w: %w", e.Key, ErrGuarded, err)
		}
	}
	if err := sh.replica.Put(ctx, e.Key, f, fi.Size()); err != nil {
		return err // names the replica and the key
	}
	sh.metrics.UploadedObjects.Inc()
	sh.metrics.UploadedBytes.Add(float64(fi.Size()))
	if err := sh.spool.Remove(e); err != nil {
		// Uploaded but still spooled: it will be uploaded again, which is
		// harmless (same key, same bytes).
		return fmt.Errorf("ship %s: uploaded, but: %w", e.Key, err)
	}
	return nil
}

// backoff returns the wait before retry number attempt (1-based):
// exponential from minBackoff, capped at maxBackoff, with "equal jitter"
// (half fixed, half random) so several tailers don't retry in lockstep.
func (sh *Shipper) backoff(attempt int) time.Duration {
	d := sh.minBackoff
	for i := 1; i < attempt && d < sh.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, sh.maxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// failed records a failed attempt, logging only the ok → failing change.
func (sh *Shipper) failed(err error, attempt int) {
	sh.stateMu.Lock()
	defer sh.stateMu.Unlock()
	sh.failedAttempt++
	if sh.failing {
		sh.log.Debug("upload retry failed", "attempt", attempt, "err", err)
		return
	}
	sh.failing = true
	sh.failingSince = time.Now()
	sh.log.Warn("uploads failing; objects stay in the spool and are retried with backoff",
		"spool", sh.spool.Dir(), "err", err)
}

// succeeded records a confirmed upload, logging only the failing → ok
// change.
func (sh *Shipper) succeeded() {
	sh.stateMu.Lock()
	defer sh.stateMu.Unlock()
	if !sh.failing {
		return
	}
	sh.log.Info("uploads recovered",
		"failed_for", time.Since(sh.failingSince).Round(time.Millisecond),
		"failed_attempts", sh.failedAttempt)
	sh.failing = false
	sh.failedAttempt = 0
}

// sleepCtx waits d or until ctx ends; it reports whether the full wait
// elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
