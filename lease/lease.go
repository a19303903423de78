// Package lease makes sure only one `tailer run` writes to a replica
// prefix: two writers would interleave generations and segments. The
// lease is a small object (lease.json) written with conditional writes
// (S3 If-None-Match / If-Match, which AWS S3 and MinIO honour; a lock on a
// directory replica), carrying its holder and an expiry the holder keeps
// renewing. A tailer that finds a live lease waits or exits with a message
// naming the holder; one that finds an expired lease (its holder died)
// takes it over; --force-takeover takes it regardless.
//
// The holder trusts only renewals the replica confirmed. Its lease is
// valid until the last confirmed renewal + TTL − Margin ([Holder.Check]);
// at that point [Holder.Keep] reports it lost even while renewals keep
// failing or hang (each attempt is cut off when the validity ends), and
// the holder must stop writing. Margin (default [DefaultMargin]: a tenth
// of the TTL, at least min(1s, TTL/5)) absorbs the clock skew between the
// holder and the tailer that judges the lease expired by its own clock,
// and the time an upload in flight needs to notice it was cancelled.
//
// Each holder writes a random token into the record, so a conditional
// write whose response was lost (applied, then retried or answered
// "precondition failed") is recognised as its own on re-reading the
// object, not mistaken for a takeover.
package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/uploader"
)

// Key is the lease object's key under the replica prefix.
const Key = "lease.json"

// Record is the lease object.
type Record struct {
	Owner    string    `json:"owner"`              // unique per process, for the operator
	Instance string    `json:"instance,omitempty"` // stable across restarts of one tailer (its scratch dir)
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	DB       string    `json:"db"`
	Acquired time.Time `json:"acquired"`
	Renewed  time.Time `json:"renewed"`
	Expires  time.Time `json:"expires"`
	// Token is random per holder: an object carrying it was written by
	// this holder, whatever a lost response said.
	Token string `json:"token,omitempty"`
}

// Options configure Acquire.
type Options struct {
	TTL  time.Duration // how long a lease lives without renewal (default 30s)
	Wait time.Duration // how long to wait for a live lease to expire (0: fail at once)
	// Margin: the holder stops this long before the expiry it recorded
	// (0: DefaultMargin(TTL)). It must exceed the clock skew between
	// tailers on the same prefix. It must be shorter than TTL.
	Margin time.Duration
	Force  bool   // take the lease even if it is live
	DB     string // recorded for the operator
	// Instance identifies this tailer across restarts (kept in its scratch
	// directory). A lease held by the same instance is a previous life of
	// this process, killed before it could release it: taken back at once.
	Instance string
	Now      func() time.Time
}

// DefaultMargin is Options.Margin's default for a TTL: a tenth of it
// (3s of the default 30s), but at least a second, which NTP-synchronised
// hosts stay well within, unless the TTL is so short (tests) that a
// second would leave no time to renew: then a fifth of the TTL.
func DefaultMargin(ttl time.Duration) time.Duration {
	return max(ttl/10, min(time.Second, ttl/5))
}

// ErrHeld is wrapped when another live holder has the lease.
var ErrHeld = errors.New("the replica is leased by another tailer")

// ErrLost is wrapped when a renewal finds the lease taken by another.
var ErrLost = errors.New("the lease was taken over by another tailer")

// ErrExpired is wrapped when the lease could not be renewed before its
// validity ended (the replica failed or hung): another tailer may take it
// now, so this one must stop writing.
var ErrExpired = errors.New("the lease expired before it could be renewed")

// ErrReleased is wrapped by Check after Release.
var ErrReleased = errors.New("the lease was released")

// ErrBadMargin is wrapped when Options.Margin is not shorter than the TTL.
var ErrBadMargin = errors.New("the lease margin must be positive and shorter than the lease TTL")

// Holder is a held lease. Check may be called from any goroutine while
// Keep renews.
type Holder struct {
	r     uploader.Replica
	opts  Options
	owner string // rec.Owner, readable without writeMu

	writeMu sync.Mutex // one conditional write at a time (Keep, Renew, Release)
	rec     Record     // the last record written; guarded by writeMu

	mu        sync.Mutex // guards the fields below
	version   string     // the object's version after our last confirmed write
	confirmed time.Time  // Renewed of the last write the replica confirmed
	ended     error      // set once the lease is known lost, expired or released
}

// Acquire takes the lease of r's prefix.
func Acquire(ctx context.Context, r uploader.Replica, opts Options) (*Holder, error) {
	if opts.TTL <= 0 {
		opts.TTL = 30 * time.Second
	}
	if opts.Margin == 0 {
		opts.Margin = DefaultMargin(opts.TTL)
	}
	if opts.Margin < 0 || opts.Margin >= opts.TTL {
		return nil, fmt.Errorf("%s: margin %v, TTL %v: %w", r, opts.Margin, opts.TTL, ErrBadMargin)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	host, _ := os.Hostname()
	now := opts.Now()
	h := &Holder{r: r, opts: opts, rec: Record{
		Owner: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), now.UnixNano()), Instance: opts.Instance,
		Host: host, PID: os.Getpid(), DB: opts.DB, Acquired: now.UTC(), Token: rand.Text(),
	}}
	h.owner = h.rec.Owner
	deadline := now.Add(opts.Wait)
	for {
		raw, version, err := r.GetVersioned(ctx, Key)
		var cur Record
		switch {
		case errors.Is(err, uploader.ErrNotFound):
			version = ""
		case err != nil:
			return nil, fmt.Errorf("read lease: %w", err)
		default:
			if jerr := json.Unmarshal(raw, &cur); jerr != nil {
				return nil, fmt.Errorf("%s/%s is not a tailer lease (%v): remove it if nothing else uses it", r, Key, jerr)
			}
		}
		now := opts.Now()
		mine := opts.Instance != "" && cur.Instance == opts.Instance
		if version == "" || !now.Before(cur.Expires) || opts.Force || mine {
			h.mu.Lock()
			h.version = version
			h.mu.Unlock()
			if err := h.write(ctx, opts.TTL); err == nil {
				return h, nil
			} else if !errors.Is(err, uploader.ErrPreconditionFailed) {
				return nil, err
			}
			continue // someone wrote meanwhile: look again
		}
		if !now.Before(deadline) {
			return nil, fmt.Errorf("%w: %s (pid %d, db %s) holds %s until %s (renewed %s): stop that tailer, wait for its lease to expire, or %w",
				ErrHeld, cur.Host, cur.PID, cur.DB, r, cur.Expires.UTC().Format(time.RFC3339), cur.Renewed.UTC().Format(time.RFC3339),
				&setting.Error{Key: "ForceTakeover", Name: "Options.Force", Before: "pass ", After: " if it is gone for good"})
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(time.Second, deadline.Sub(now))): // the holder's TTL is not ours: look again soon
		}
	}
}

// write stores the record with an expiry ttl from now, if the object is
// still at the version of our last confirmed write ("" = absent). Only a
// confirmed write moves the validity forward. A "precondition failed" is
// checked by re-reading the object: if it carries our token, an earlier
// write of ours was applied though its response was lost, and the lease
// is still ours.
func (h *Holder) write(ctx context.Context, ttl time.Duration) error {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	now := h.opts.Now()
	next := h.rec
	next.Renewed, next.Expires = now.UTC(), now.Add(ttl).UTC()
	raw, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return err
	}
	h.mu.Lock()
	version := h.version
	h.mu.Unlock()
	// At most twice: a second write only follows adopting our own
	// earlier write's version.
	for range 2 {
		v, err := h.r.PutIf(ctx, Key, raw, version)
		if err == nil {
			h.rec = next
			h.confirm(v, next.Renewed)
			return nil
		}
		if !errors.Is(err, uploader.ErrPreconditionFailed) {
			return err
		}
		cur, curVersion, rerr := h.r.GetVersioned(ctx, Key)
		if errors.Is(rerr, uploader.ErrNotFound) {
			return err
		}
		if rerr != nil {
			return fmt.Errorf("%w; then re-reading the lease to tell whether the write was ours failed: %w", err, rerr)
		}
		var rec Record
		if json.Unmarshal(cur, &rec) != nil || rec.Token != h.rec.Token {
			return err // another tailer's
		}
		if bytes.Equal(cur, raw) { // this very write was applied
			h.rec = next
			h.confirm(curVersion, next.Renewed)
			return nil
		}
		// An earlier write of ours, applied unconfirmed: it is what the
		// replica holds, so it counts; write this one over it.
		h.confirm(curVersion, rec.Renewed)
		version = curVersion
	}
	return fmt.Errorf("%s: write %s: our own record kept changing under us: %w", h.r, Key, uploader.ErrPreconditionFailed)
}

// confirm records a write the replica holds: its version and the renewal
// time it carries (never moving the validity backwards).
func (h *Holder) confirm(version string, renewed time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.version = version
	if renewed.After(h.confirmed) {
		h.confirmed = renewed
	}
}

// ValidUntil is when this holder must stop writing unless a renewal is
// confirmed first: the last confirmed renewal + TTL − Margin, on the
// Options.Now clock.
func (h *Holder) ValidUntil() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.validUntil()
}

func (h *Holder) validUntil() time.Time {
	return h.confirmed.Add(h.opts.TTL - h.opts.Margin)
}

// Check returns nil while the lease is valid, else why not (wrapping
// ErrLost, ErrExpired or ErrReleased). Writers consult it before each
// write to the replica.
func (h *Holder) Check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended != nil {
		return h.ended
	}
	if until := h.validUntil(); !h.opts.Now().Before(until) {
		return fmt.Errorf("%w (%s): not renewed since %s: this tailer stops writing to it",
			ErrExpired, h.r, h.confirmed.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// end records why the lease ended (the first reason wins) and returns it.
func (h *Holder) end(err error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended == nil {
		h.ended = err
	}
	return h.ended
}

// Renew extends the lease; ErrLost means another tailer took it.
func (h *Holder) Renew(ctx context.Context) error {
	h.mu.Lock()
	ended := h.ended
	h.mu.Unlock()
	if ended != nil {
		return ended
	}
	err := h.write(ctx, h.opts.TTL)
	if errors.Is(err, uploader.ErrPreconditionFailed) {
		return h.end(fmt.Errorf("%w (%s): this tailer stops writing to it", ErrLost, h.r))
	}
	return err
}

// Keep renews every TTL/3 (every TTL/10 after a failure) until ctx ends
// or the lease is released. It calls lost once, and returns, if the lease
// is taken over or when its validity (ValidUntil) ends without a
// confirmed renewal: a renewal attempt is cut off at that point, so a
// hanging replica cannot keep the holder alive.
func (h *Holder) Keep(ctx context.Context, lost func(error)) {
	next := h.opts.TTL / 3
	var lastErr error
	for {
		remaining := h.ValidUntil().Sub(h.opts.Now())
		if wait := min(next, remaining); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if errors.Is(h.Check(), ErrReleased) {
			return
		}
		if err := h.Check(); err != nil {
			if lastErr != nil {
				err = fmt.Errorf("%w (last renewal error: %v)", err, lastErr)
			}
			lost(h.end(err))
			return
		}
		err := h.renewWithin(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil:
			next, lastErr = h.opts.TTL/3, nil
		case errors.Is(err, ErrLost):
			lost(err)
			return
		case errors.Is(err, ErrReleased):
			return
		default: // transient: still ours until the validity ends
			next, lastErr = max(h.opts.TTL/10, time.Millisecond), err
		}
	}
}

// renewWithin renews, giving up when the lease's validity ends.
func (h *Holder) renewWithin(ctx context.Context) error {
	left := h.ValidUntil().Sub(h.opts.Now())
	rctx, cancel := context.WithDeadline(ctx, time.Now().Add(left))
	defer cancel()
	return h.Renew(rctx)
}

// Release lets the next tailer in at once: the lease is rewritten as
// expired (if it is still ours). Check fails from then on and Keep stops.
func (h *Holder) Release(ctx context.Context) error {
	h.end(fmt.Errorf("%w (%s)", ErrReleased, h.r))
	err := h.write(ctx, 0)
	if errors.Is(err, uploader.ErrPreconditionFailed) {
		return nil // someone took it already
	}
	return err
}

// Owner identifies this holder.
func (h *Holder) Owner() string { return h.owner }
