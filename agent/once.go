package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/tailer-backup/tailer/export"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/secondary"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/snapshot"
	"github.com/tailer-backup/tailer/uploader"
)

// OnDemandExport takes one consistent hot export of a live store (what
// `stalwart -e` cannot do while Stalwart runs) and stores it as a new
// generation of r, recorded with the reason "on-demand export" (the name:
// the same export `run` takes every --export-interval, taken once, when
// asked, by `tailer export`), so it can be restored like any other. The export is staged in scratch, then uploaded; nothing is
// written in the store's directory. Do not run it against a replica a
// `tailer run` is shipping to: `run` continues its own generation.
func OnDemandExport(ctx context.Context, db, scratch string, r uploader.Replica, log *slog.Logger, progress export.Progress) (layout.Meta, export.Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if scratch == "" {
		scratch = secondary.DefaultScratch(db)
	}
	if err := secondary.CheckOutside(scratch, db); err != nil {
		return layout.Meta{}, export.Result{}, fmt.Errorf("%w %w", &setting.Error{Key: "Scratch", Name: "scratch directory"}, err)
	}
	absDB, _ := filepath.Abs(db)
	now := time.Now()
	gens, _, err := catalog.List(ctx, r, nil)
	if err != nil {
		return layout.Meta{}, export.Result{}, err
	}
	after := ""
	if len(gens) > 0 {
		after = gens[len(gens)-1].ID
	}
	id := layout.NewGenerationID(now, after)
	frozen, err := snapshot.OpenFrozen(ctx, db, filepath.Join(scratch, "snapshots", id), log)
	if err != nil {
		return layout.Meta{}, export.Result{}, err
	}
	defer frozen.Close()
	identity, err := secondary.ReadIdentity(frozen.Dir)
	if err != nil {
		return layout.Meta{}, export.Result{}, err
	}
	meta := layout.Meta{ID: id, Created: now.UTC(), Reason: "on-demand export", DBIdentity: identity,
		Source: absDB, BaseSeq: frozen.Seq, Families: frozen.Store.FamilyTable()}
	stage, err := os.CreateTemp(scratch, "export-*.texp")
	if err != nil {
		return meta, export.Result{}, fmt.Errorf("stage export in %s: %w", scratch, err)
	}
	defer os.Remove(stage.Name())
	defer stage.Close()
	hdr := segment.Header{Generation: id, DBIdentity: identity, Created: now.UTC(), Compression: segment.CompressionZstd}
	res, err := export.Write(ctx, frozen.Store, frozen.Seq, hdr, stage, progress)
	if err != nil {
		return meta, res, err
	}
	raw, err := layout.EncodeMeta(meta)
	if err != nil {
		return meta, res, err
	}
	if err := r.Put(ctx, layout.MetaKey(id), bytes.NewReader(raw), int64(len(raw))); err != nil {
		return meta, res, fmt.Errorf("upload %s: %w", layout.MetaKey(id), err)
	}
	if _, err := stage.Seek(0, 0); err != nil {
		return meta, res, err
	}
	key := layout.ExportKey(id, frozen.Seq)
	if err := r.Put(ctx, key, stage, res.Stats.Written); err != nil {
		return meta, res, fmt.Errorf("upload %s: %w", key, err)
	}
	log.Info("export uploaded", "key", key, "bytes", res.Stats.Written)
	return meta, res, nil
}
