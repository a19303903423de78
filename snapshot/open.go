package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tailer-backup/tailer/internal/store"
)

// Frozen is a snapshot opened read-only: a consistent view of the primary
// at one sequence number, readable family by family (blob files included)
// while the primary keeps writing.
type Frozen struct {
	*Snapshot
	Store *store.Store
	Seq   uint64 // latest sequence number of the view
}

// OpenFrozen takes a snapshot of primary into dir and opens it read-only.
// A copy that fails to open (the primary moved in a way the MANIFEST check
// missed, e.g. a torn final record) is retaken a few times.
func OpenFrozen(ctx context.Context, primary, dir string, log *slog.Logger) (*Frozen, error) {
	const tries = 5
	var lastErr error
	for i := 0; i < tries; i++ {
		snap, err := Take(ctx, primary, dir, log)
		if err != nil {
			return nil, err
		}
		st, err := store.OpenReadOnly(dir)
		if err == nil {
			return &Frozen{Snapshot: snap, Store: st, Seq: st.DB.GetLatestSequenceNumber()}, nil
		}
		lastErr = err
		snap.Remove()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("open snapshot of %s: %w", primary, lastErr)
}

// Close closes the view and removes the snapshot's links.
func (f *Frozen) Close() error {
	f.Store.Close()
	return f.Remove()
}
