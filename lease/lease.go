// Package lease makes sure only one `tailer run` writes to a replica
// prefix: two writers would interleave generations and segments. The
// lease is a small object (lease.json) written with conditional writes
// (S3 If-None-Match / If-Match, which AWS S3 and MinIO honour; a lock on a
// directory replica), carrying its holder and an expiry the holder keeps
// renewing. A tailer that finds a live lease waits or exits with a message
// naming the holder; one that finds an expired lease (its holder died)
// takes it over; --force-takeover takes it regardless.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tailer-backup/tailer/uploader"
)

// Key is the lease object's key under the replica prefix.
const Key = "lease.json"

// Record is the lease object.
type Record struct {
	Owner    string    `json:"owner"`              // unique per process
	Instance string    `json:"instance,omitempty"` // stable across restarts of one tailer (its scratch dir)
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	DB       string    `json:"db"`
	Acquired time.Time `json:"acquired"`
	Renewed  time.Time `json:"renewed"`
	Expires  time.Time `json:"expires"`
}

// Options configure Acquire.
type Options struct {
	TTL   time.Duration // how long a lease lives without renewal (default 30s)
	Wait  time.Duration // how long to wait for a live lease to expire (0: fail at once)
	Force bool          // take the lease even if it is live
	DB    string        // recorded for the operator
	// Instance identifies this tailer across restarts (kept in its scratch
	// directory). A lease held by the same instance is a previous life of
	// this process, killed before it could release it: taken back at once.
	Instance string
	Now      func() time.Time
}

// ErrHeld is wrapped when another live holder has the lease.
var ErrHeld = errors.New("the replica is leased by another tailer")

// ErrLost is wrapped when a renewal finds the lease taken by another.
var ErrLost = errors.New("the lease was taken over by another tailer")

// Holder is a held lease.
type Holder struct {
	r       uploader.Replica
	opts    Options
	rec     Record
	version string
}

// Acquire takes the lease of r's prefix.
func Acquire(ctx context.Context, r uploader.Replica, opts Options) (*Holder, error) {
	if opts.TTL <= 0 {
		opts.TTL = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	host, _ := os.Hostname()
	now := opts.Now()
	h := &Holder{r: r, opts: opts, rec: Record{
		Owner: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), now.UnixNano()), Instance: opts.Instance,
		Host: host, PID: os.Getpid(), DB: opts.DB, Acquired: now.UTC(),
	}}
	deadline := now.Add(opts.Wait)
	for {
		raw, version, err := uploader.GetVersioned(ctx, r, Key)
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
			if err := h.write(ctx, version); err == nil {
				return h, nil
			} else if !errors.Is(err, uploader.ErrPreconditionFailed) {
				return nil, err
			}
			continue // someone wrote meanwhile: look again
		}
		if !now.Before(deadline) {
			return nil, fmt.Errorf("%w: %s (pid %d, db %s) holds %s until %s (renewed %s): stop that tailer, wait for its lease to expire, or pass --force-takeover if it is gone for good",
				ErrHeld, cur.Host, cur.PID, cur.DB, r, cur.Expires.UTC().Format(time.RFC3339), cur.Renewed.UTC().Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(time.Second, deadline.Sub(now))): // the holder's TTL is not ours: look again soon
		}
	}
}

// write stores the record with a fresh expiry, if the object is still at
// version ("" = absent).
func (h *Holder) write(ctx context.Context, version string) error {
	now := h.opts.Now()
	h.rec.Renewed, h.rec.Expires = now.UTC(), now.Add(h.opts.TTL).UTC()
	raw, err := json.MarshalIndent(h.rec, "", "  ")
	if err != nil {
		return err
	}
	v, err := uploader.PutIf(ctx, h.r, Key, raw, version)
	if err != nil {
		return err
	}
	h.version = v
	return nil
}

// Renew extends the lease; ErrLost means another tailer took it.
func (h *Holder) Renew(ctx context.Context) error {
	err := h.write(ctx, h.version)
	if errors.Is(err, uploader.ErrPreconditionFailed) {
		return fmt.Errorf("%w (%s): this tailer stops writing to it", ErrLost, h.r)
	}
	return err
}

// Keep renews every TTL/3 until ctx ends. It calls lost once if the lease
// is taken over or cannot be renewed before it expires.
func (h *Holder) Keep(ctx context.Context, lost func(error)) {
	t := time.NewTicker(h.opts.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := h.Renew(ctx)
		if err == nil || ctx.Err() != nil {
			continue
		}
		if errors.Is(err, ErrLost) || !h.opts.Now().Before(h.rec.Expires) {
			lost(err)
			return
		}
		// a transient failure: the lease is still ours until it expires
	}
}

// Release lets the next tailer in at once: the lease is rewritten as
// expired (if it is still ours).
func (h *Holder) Release(ctx context.Context) error {
	h.opts.TTL = 0
	err := h.write(ctx, h.version)
	if errors.Is(err, uploader.ErrPreconditionFailed) {
		return nil // someone took it already
	}
	return err
}

// Owner identifies this holder.
func (h *Holder) Owner() string { return h.rec.Owner }
