package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/tailer-backup/tailer/internal/diskguard"
	"github.com/tailer-backup/tailer/walpin"
)

// checkDisk applies MinFree at the start of every poll and reports
// whether free space is low, in which case the poll does nothing else.
//
// Like a full spool it pauses sealing, but it cannot keep the batches:
// the WAL pins are on the same filesystem, so they are dropped (and no
// new WAL file is pinned, no export or generation starts) while the
// guard is active. When free space is back, tailing resumes from the
// last sealed batch; if the store deleted WAL meanwhile, the usual gap
// check (tail) starts a new generation. Uploads go on all along: they
// free space.
func (a *Agent) checkDisk(ctx context.Context) (bool, error) {
	low, changed, r, err := a.guard.Check()
	if err != nil {
		if !a.guardFail {
			a.log.Warn("cannot measure free space; the disk guard keeps its current state until it can", "err", err)
		}
		a.guardFail = true
		return low, nil
	}
	a.guardFail = false
	if !changed {
		return low, nil
	}
	if low {
		return true, a.tripDiskGuard(r)
	}
	return false, a.releaseDiskGuard(ctx, r)
}

// tripDiskGuard gives the disk back to the mail server: no running
// export, no WAL pins.
func (a *Agent) tripDiskGuard(r diskguard.Reading) error {
	a.diskLow.Store(true)
	a.m.diskGuardActive.Set(1)
	a.m.diskGuardTrips.Inc()
	a.log.Error("DISK GUARD: free space fell below --min-free; tailer stops sealing and exporting and drops its WAL pins so the mail server can keep writing. Writes from now on are not backed up until space recovers; then tailing resumes, and if the store deleted WAL meanwhile a new generation (with a full export) starts. Free space on this filesystem (uploads of the spool go on)",
		"path", r.Path, "free_bytes", r.Free, "total_bytes", r.Total, "min_free", a.guard.Threshold().String(), "last_shipped_seq", a.lastShipped)
	a.stopExport()
	a.stopPinning()
	err := a.pins.Reset()
	a.walCur = walpin.Cursor{}
	files, bytes := a.pins.Stats()
	a.m.pinFiles.Set(float64(files))
	a.m.pinBytes.Set(float64(bytes))
	if err != nil {
		return fmt.Errorf("disk guard: %w", err)
	}
	return nil
}

// releaseDiskGuard resumes pinning; the poll goes on to tail from the
// last sealed batch.
func (a *Agent) releaseDiskGuard(ctx context.Context, r diskguard.Reading) error {
	a.diskLow.Store(false)
	a.m.diskGuardActive.Set(0)
	a.log.Warn("free space recovered above --min-free (+1%): tailing resumes from the last sealed batch; if the store deleted WAL while tailer was paused, the gap starts a new generation",
		"path", r.Path, "free_bytes", r.Free, "total_bytes", r.Total, "min_free", a.guard.Threshold().String(), "last_shipped_seq", a.lastShipped)
	a.lastCatchUp = time.Time{} // compare with the store's latest at once: a gap is found at the next polls
	if a.cfg.PinInterval > 0 {
		return a.startPinning(ctx)
	}
	return nil
}

// startPinning pins the store's current WAL files and keeps pinning new
// ones in the background until stopPinning.
func (a *Agent) startPinning(ctx context.Context) error {
	if _, err := a.pins.Refresh(); err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.pins.Run(pctx, a.cfg.PinInterval)
	}()
	a.pinStop = func() { cancel(); <-done }
	return nil
}

// stopPinning stops the background pinning and waits for it, so nothing
// is pinned after it returns.
func (a *Agent) stopPinning() {
	if a.pinStop != nil {
		a.pinStop()
		a.pinStop = nil
	}
}
