package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/lease"
	"github.com/tailer-backup/tailer/retention"
	"github.com/tailer-backup/tailer/uploader"
)

// pruneBlobs decides how a one-off prune may treat blob objects: only a
// process holding the replica's lease may delete them, because a running
// tailer counts the blobs it uploaded as held and would not upload one
// again that prune deleted (and prune cannot see the segments in its
// spool). With the lease free, prune takes it (no wait), keeps it renewed
// while it runs, and deletes blobs through a guard that checks it still
// holds it; with a live holder, blobs are skipped and w says so in one
// line. The returned context ends if the lease is lost; done releases it.
func pruneBlobs(ctx context.Context, w io.Writer, r uploader.Replica, p *retention.Policy) (context.Context, func(), error) {
	if p.DryRun {
		return ctx, func() {}, nil
	}
	h, err := lease.Acquire(ctx, r, lease.Options{DB: "tailer prune"})
	if errors.Is(err, lease.ErrHeld) {
		p.SkipBlobs = true
		fmt.Fprintf(w, "blob objects are left to the running tailer's maintenance (holder %s)\n", leaseHolder(ctx, r))
		return ctx, func() {}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("take the lease of %s before deleting blob objects: %w", r, err)
	}
	kctx, cancel := context.WithCancelCause(ctx)
	go h.Keep(kctx, cancel)
	p.Blobs = leaseGuard{h}
	return kctx, func() {
		cancel(nil)
		if err := h.Release(context.Background()); err != nil {
			fmt.Fprintf(w, "warning: releasing the lease of %s failed (it expires by itself): %v\n", r, err)
		}
	}, nil
}

// leaseHolder names the live holder of r's lease for a message.
func leaseHolder(ctx context.Context, r uploader.Replica) string {
	raw, _, err := r.GetVersioned(ctx, lease.Key)
	var rec lease.Record
	if err != nil || json.Unmarshal(raw, &rec) != nil {
		return "unknown"
	}
	return fmt.Sprintf("%s pid %d, lease valid until %s", rec.Host, rec.PID, rec.Expires.UTC().Format(time.RFC3339))
}

// leaseGuard lets prune delete blob objects while it holds the lease: no
// tailer ships to the replica meanwhile, so the bucket alone decides.
type leaseGuard struct{ h *lease.Holder }

func (leaseGuard) BeginBlobGC(context.Context) (map[blobfs.Hash]bool, error) { return nil, nil }

func (g leaseGuard) DeleteBlobs(_ context.Context, decide func(func(blobfs.Hash) bool) ([]blobfs.Hash, error)) error {
	if err := g.h.Check(); err != nil {
		return fmt.Errorf("no blob object deleted: %w", err)
	}
	_, err := decide(func(blobfs.Hash) bool { return false })
	return err
}

func (leaseGuard) EndBlobGC() {}
