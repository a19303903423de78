package agent

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/tailer-backup/tailer/export"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/secondary"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/snapshot"
)

// startGeneration freezes the store, writes generation.json, continues
// tailing from the frozen sequence number and streams the base export in
// the background.
func (a *Agent) startGeneration(ctx, expCtx context.Context) error {
	why := a.newGenWhy
	if why == "" {
		why = "no generation to continue"
	}
	a.flush() // what was read of the old generation goes into it
	a.stopExport()
	// The store may have been replaced or restored: WAL numbers start over.
	if err := a.pins.Reset(); err != nil {
		return err
	}
	if _, err := a.pins.Refresh(); err != nil {
		return err
	}
	now := a.cfg.Now()
	after := a.newestGen
	if a.gen != nil {
		after = a.gen.meta.ID
	}
	id := layout.NewGenerationID(now, after)
	frozen, err := snapshot.OpenFrozen(ctx, a.cfg.DB, filepath.Join(a.cfg.Scratch, "snapshots", id), a.log)
	if err != nil {
		return fmt.Errorf("start generation (%s): %w", why, err)
	}
	identity, err := secondary.ReadIdentity(frozen.Dir)
	if err != nil {
		frozen.Close()
		return err
	}
	meta := layout.Meta{
		ID: id, Created: now.UTC(), Reason: why, DBIdentity: identity, Source: a.cfg.DB,
		BaseSeq: frozen.Seq, Families: frozen.Store.FamilyTable(),
	}
	// The batch ending at the export's sequence number, for the resume
	// check (checkShippedBatch) until a segment follows the export.
	if meta.BaseBatch, err = batchAt(ctx, frozen.Dir, frozen.Seq, a.log); err != nil {
		a.log.Warn("cannot read the snapshot's last WAL batch; a restart before the first segment cannot check the store against it", "seq", frozen.Seq, "err", err)
	}
	raw, err := layout.EncodeMeta(meta)
	if err == nil {
		a.expMu.Lock()
		for _, t := range a.targets {
			t.detached = false // a new generation brings every replica back in step
		}
		a.expMu.Unlock()
		err = a.publish(layout.MetaKey(id), func(w io.Writer) error { _, err := w.Write(raw); return err })
	}
	if err != nil {
		frozen.Close()
		return fmt.Errorf("spool %s: %w", layout.MetaKey(id), err)
	}
	a.gen = &generation{meta: meta}
	a.waitFor, a.newGenWhy = frozen.Seq, ""
	a.setShipped(frozen.Seq)
	a.lastExp = now // the base export counts for --export-interval
	a.m.generations.Inc()
	a.m.lastShipped.Set(float64(frozen.Seq))
	a.log.Info("new generation", "generation", id, "reason", why, "base_seq", frozen.Seq,
		"snapshot_files_linked", frozen.Linked, "snapshot_bytes", frozen.Bytes)
	a.launchExport(expCtx, a.gen, frozen)
	return nil
}

// maybePeriodicExport starts an export of the current generation when the
// interval has passed and none is running.
func (a *Agent) maybePeriodicExport(ctx, expCtx context.Context) error {
	if a.cfg.ExportInterval <= 0 || a.cfg.Now().Sub(a.lastExp) < a.cfg.ExportInterval {
		return nil
	}
	a.expMu.Lock()
	busy := a.expBusy
	a.expMu.Unlock()
	if busy {
		return nil
	}
	frozen, err := snapshot.OpenFrozen(ctx, a.cfg.DB, filepath.Join(a.cfg.Scratch, "snapshots", fmt.Sprintf("%s-%d", a.gen.meta.ID, a.cfg.Now().UnixNano())), a.log)
	if err != nil {
		return fmt.Errorf("periodic export: %w", err)
	}
	a.lastExp = a.cfg.Now()
	a.launchExport(expCtx, a.gen, frozen)
	return nil
}

// launchExport streams frozen into the spool as an export of gen, beside
// the tailing loop. The snapshot is released when it is done.
func (a *Agent) launchExport(ctx context.Context, gen *generation, frozen *snapshot.Frozen) {
	ctx, cancel := context.WithCancel(ctx)
	a.expMu.Lock()
	a.expBusy, a.expCancel = true, cancel
	a.expMu.Unlock()
	a.exports.Add(1)
	go func() {
		defer a.exports.Done()
		defer cancel()
		err := a.writeExport(ctx, gen, frozen)
		a.expMu.Lock()
		defer a.expMu.Unlock()
		a.expBusy, a.expCancel = false, nil
		switch {
		case err == nil:
			gen.hasExport = true
		case ctx.Err() != nil:
			a.log.Info("export stopped before it finished", "generation", gen.meta.ID, "seq", frozen.Seq)
			if !gen.hasExport {
				a.expFailedGen = gen.meta.ID
			}
		default:
			a.m.exportErrors.Inc()
			a.log.Error("export failed", "generation", gen.meta.ID, "seq", frozen.Seq, "err", err)
			if !gen.hasExport {
				a.expFailedGen = gen.meta.ID
			}
		}
	}()
}

func (a *Agent) writeExport(ctx context.Context, gen *generation, frozen *snapshot.Frozen) error {
	defer frozen.Close()
	key := layout.ExportKey(gen.meta.ID, frozen.Seq)
	start := time.Now()
	hdr := segment.Header{Generation: gen.meta.ID, DBIdentity: gen.meta.DBIdentity, Created: a.cfg.Now().UTC(), Compression: segment.CompressionZstd}
	if a.blobs != nil {
		// Its blobs and their manifest first: the export counts as
		// complete only with them.
		if err := a.exportBlobs(ctx, gen.meta.ID, frozen.Seq, frozen.Store, a.cfg.Now()); err != nil {
			return err
		}
	}
	var res export.Result
	err := a.publish(key, func(w io.Writer) error {
		var err error
		res, err = export.Write(ctx, frozen.Store, frozen.Seq, hdr, w, func(s export.Stats) {
			a.log.Info("exporting", "generation", gen.meta.ID, "seq", frozen.Seq, "family", s.Family, "keys", s.Keys, "bytes", s.Written)
		})
		return err
	})
	if err != nil {
		return err
	}
	a.m.exports.Inc()
	a.m.exportSeconds.Set(time.Since(start).Seconds())
	a.m.exportBytes.Set(float64(res.Stats.Written))
	a.log.Info("export sealed", "key", key, "keys", res.Stats.Keys, "bytes", res.Stats.Written, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// stopExport cancels a running export (of a superseded generation) and
// waits for it to stop.
func (a *Agent) stopExport() {
	a.expMu.Lock()
	cancel := a.expCancel
	a.expMu.Unlock()
	if cancel != nil {
		cancel()
	}
	a.exports.Wait()
}

// exportFailed reports whether the current generation lost its base export.
func (a *Agent) exportFailed() bool {
	a.expMu.Lock()
	defer a.expMu.Unlock()
	return a.gen != nil && !a.gen.hasExport && a.expFailedGen == a.gen.meta.ID
}
