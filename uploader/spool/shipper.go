package spool

import (
	"context"
	"errors"
	"fmt"
	"github.com/tailer-backup/tailer/uploader"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/internal/layout"
)

// Shipper drains a Spool into a Replica. It uploads oldest first, retries
// a failing upload forever with capped exponential backoff and jitter (a
// bucket outage must delay backups, not drop them), and removes a spool
// file only after Put returned nil. It logs once per state change (ok →
// failing → ok), not per retry, so an hour-long outage is two log lines.
type Shipper struct {
	spool   *Spool
	replica uploader.Replica
	log     *slog.Logger
	metrics *ShipperMetrics
	wake    chan struct{}

	// Retry and polling timing; tests shorten them.
	minBackoff, maxBackoff time.Duration
	rescan                 time.Duration // safety net for a missed Notify

	// upload is the upload slot, held (a send) for a whole batch, so Run
	// and Drain never upload side by side: neither could otherwise
	// upload a segment while the other still uploads a blob before it.
	upload   chan struct{}
	parallel int                          // blob objects in flight at most
	list     func() ([]SpoolEntry, error) // the spool's Pending; tests replace it
	guard    func() error

	// Highest sequence number a complete listing showed (see
	// trustedPrefix); guarded by the upload slot.
	listedMax uint64
	listed    bool

	stateMu       sync.Mutex
	failing       bool
	failingSince  time.Time
	failedAttempt int
}

// DefaultBlobUploads is how many blob objects a Shipper uploads at once:
// a filesystem blob store spools one object per message, and uploading
// them one round trip at a time cannot keep up with a busy server.
const DefaultBlobUploads = 8

// NewShipper returns a Shipper from s to r. Its metrics are registered on
// reg (nil: not registered); log may be nil to discard logs.
func NewShipper(s *Spool, r uploader.Replica, reg prometheus.Registerer, log *slog.Logger) *Shipper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Shipper{
		spool:      s,
		replica:    r,
		log:        log.With("replica", r.String()),
		metrics:    NewShipperMetrics(reg, s),
		wake:       make(chan struct{}, 1),
		upload:     make(chan struct{}, 1),
		parallel:   DefaultBlobUploads,
		list:       s.Pending,
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
		empty, shipped, err := sh.shipBatch(ctx)
		if shipped > 0 {
			attempt = 0
		}
		if err == nil {
			if empty {
				return nil
			}
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

// shipBatch lists the spool once and uploads what that listing can be
// trusted with (see trustedPrefix), oldest first: a run of consecutive
// blob objects concurrently (they have no order among themselves), any
// other object alone and only once everything before it was uploaded and
// removed. It stops at the first failure; empty reports an empty spool.
// It holds the upload slot for the whole batch, so a concurrent Run and
// Drain never upload side by side and never reorder each other.
func (sh *Shipper) shipBatch(ctx context.Context) (empty bool, shipped int, err error) {
	select {
	case sh.upload <- struct{}{}:
	case <-ctx.Done():
		return false, 0, nil
	}
	defer func() { <-sh.upload }()
	ents, err := sh.list()
	if err != nil {
		return false, 0, err
	}
	if len(ents) == 0 {
		return true, 0, nil
	}
	batch := sh.trustedPrefix(ents)
	for i := 0; i < len(batch); {
		if !isBlobKey(batch[i].Key) {
			if err := sh.shipOne(ctx, batch[i]); err != nil {
				return false, shipped, err
			}
			sh.succeeded()
			shipped++
			i++
			continue
		}
		j := i + 1
		for j < len(batch) && isBlobKey(batch[j].Key) {
			j++
		}
		n, err := sh.shipConcurrently(ctx, batch[i:j])
		shipped += n
		if err != nil {
			return false, shipped, err
		}
		i = j
	}
	return false, shipped, nil
}

// shipConcurrently uploads ents (blob objects) with up to sh.parallel in
// flight and returns once none is. After a failure it starts no more; the
// error returned is a guard refusal if any, else the first failure.
func (sh *Shipper) shipConcurrently(ctx context.Context, ents []SpoolEntry) (int, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		shipped  int
		firstErr error
	)
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	slots := make(chan struct{}, max(sh.parallel, 1))
	for _, e := range ents {
		slots <- struct{}{}
		if stopped() || ctx.Err() != nil {
			<-slots
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			err := sh.shipOne(ctx, e)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				shipped++
				sh.succeeded()
			case firstErr == nil || (errors.Is(err, ErrGuarded) && !errors.Is(firstErr, ErrGuarded)):
				firstErr = err
			}
		}()
	}
	wg.Wait()
	return shipped, firstErr
}

// isBlobKey reports whether key is a blob object of a filesystem blob
// store: content-addressed, so blob objects may reach the replica in any
// order among themselves (only what references them must come after).
func isBlobKey(key string) bool {
	_, ok := layout.ParseBlobKey(key)
	return ok
}

// trustedPrefix returns the leading entries of a listing that cannot be
// missing an earlier entry. A directory listing concurrent with commits
// may miss an entry yet show a later one; sequence numbers are dense
// (each commit takes the next one, in order), so a gap above everything
// an earlier listing showed may be such an entry: the batch stops before
// the gap, and the next listing, started after this one ended, sees the
// entry if it exists. A gap at or below what an earlier listing showed is
// real (an entry removed): that earlier entry was committed after the
// missing sequence number, before this listing began. It records the
// listing's highest sequence number; it runs with the upload slot held.
func (sh *Shipper) trustedPrefix(ents []SpoolEntry) []SpoolEntry {
	lo, haveLo := sh.listedMax, sh.listed
	for i, e := range ents {
		seq, ok := entrySeq(e)
		if !ok {
			continue // not a queue file name; Pending returns none such
		}
		if haveLo && seq > lo+1 {
			sh.noteListed(ents)
			return ents[:i]
		}
		if !haveLo || seq > lo {
			lo, haveLo = seq, true
		}
	}
	sh.noteListed(ents)
	return ents
}

// noteListed records the highest sequence number of a complete listing.
func (sh *Shipper) noteListed(ents []SpoolEntry) {
	for _, e := range ents {
		if seq, ok := entrySeq(e); ok && (!sh.listed || seq > sh.listedMax) {
			sh.listedMax, sh.listed = seq, true
		}
	}
}

// entrySeq is the sequence number in a spool entry's file name.
func entrySeq(e SpoolEntry) (uint64, bool) {
	seq, _, ok := parseSpoolName(filepath.Base(e.Path))
	return seq, ok
}

// shipOne uploads one entry and removes it from the spool.
func (sh *Shipper) shipOne(ctx context.Context, e SpoolEntry) error {
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
