package agent

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/segment"
)

// generation is the generation the agent is shipping into.
type generation struct {
	meta      layout.Meta
	hasExport bool
}

// resume derives the tailing state from the replicas and their spools:
// the newest generation, its last shipped batch, and whether it can go
// on. With several replicas it goes on only if every one holds the same
// generation up to the same batch; a replica added later (or one that fell
// behind) makes a new generation, so that every replica gets its export.
// The last shipped batch must also still be the store's batch at that
// sequence number (checkShippedBatch): a store that lost writes and reused
// their sequence numbers makes a new generation too.
func (a *Agent) resume(ctx context.Context) error {
	type view struct {
		t    *target
		g    *layout.Generation
		meta layout.Meta
	}
	views := make([]view, 0, len(a.targets))
	for _, t := range a.targets {
		gens, unknown, err := catalog.List(ctx, t.r, t.spool)
		if err != nil {
			return err
		}
		if len(unknown) > 0 {
			a.log.Warn("replica holds objects tailer did not write; leaving them alone", "replica", t.r.String(), "count", len(unknown), "first", unknown[0])
		}
		v := view{t: t}
		if len(gens) > 0 {
			g := gens[len(gens)-1]
			v.g = &g
			if g.ID > a.newestGen {
				a.newestGen = g.ID
			}
			if g.MetaKey != "" {
				if v.meta, err = a.readMeta(ctx, t, g.MetaKey); err != nil {
					return err
				}
			}
		}
		views = append(views, v)
	}
	identity, err := a.sec.Identity()
	if err != nil {
		return err
	}
	first := views[0]
	for _, v := range views {
		switch {
		case v.g == nil && len(views) == 1:
			a.newGenWhy = "first run against this replica"
		case v.g == nil:
			a.newGenWhy = fmt.Sprintf("first run against replica %s", v.t.r)
		case first.g == nil || v.g.ID != first.g.ID:
			a.newGenWhy = fmt.Sprintf("replicas disagree: %s holds generation %s, %s another (a replica was added or fell behind)", v.t.r, v.g.ID, first.t.r)
		case v.g.MetaKey == "":
			a.newGenWhy = fmt.Sprintf("generation %s has no %s", v.g.ID, layout.MetaName)
		case v.meta.DBIdentity != identity:
			a.newGenWhy = fmt.Sprintf("DB identity changed from %s to %s: the store was replaced", v.meta.DBIdentity, identity)
		case len(v.g.Exports) == 0:
			a.newGenWhy = fmt.Sprintf("generation %s has no export (tailer stopped before its base export finished)", v.g.ID)
		case v.g.LastSeq() != first.g.LastSeq():
			a.newGenWhy = fmt.Sprintf("replicas disagree: %s holds generation %s up to %d, %s up to %d", v.t.r, v.g.ID, v.g.LastSeq(), first.t.r, first.g.LastSeq())
		}
		if a.newGenWhy != "" {
			return nil
		}
	}
	g := first.g
	why, err := a.checkShippedBatch(ctx, first.t, *g, first.meta)
	switch {
	case errors.Is(err, segment.ErrCorrupt):
		a.newGenWhy = fmt.Sprintf("the last shipped segment of generation %s cannot be read to check the store against it: %v", g.ID, err)
		a.log.Warn(a.newGenWhy + "; starting a new generation")
		return nil
	case err != nil:
		return err
	case why != "":
		a.m.seqReuse.Inc()
		a.newGenWhy = why
		a.log.Warn(why+"; starting a new generation", "generation", g.ID, "last_shipped_seq", g.LastSeq())
		return nil
	}
	a.gen = &generation{meta: first.meta, hasExport: true}
	a.setShipped(g.LastSeq())
	a.lastExp = g.Exports[len(g.Exports)-1].Modified
	a.m.lastShipped.Set(float64(a.lastShipped))
	a.log.Info("continuing generation", "generation", g.ID, "last_shipped_seq", a.lastShipped,
		"exports", len(g.Exports), "segments", len(g.Segments), "replicas", len(a.targets))
	return nil
}

// readMeta reads generation.json from the spool if it is still there,
// else from the replica.
func (a *Agent) readMeta(ctx context.Context, t *target, key string) (layout.Meta, error) {
	pending, err := t.spool.Pending()
	if err != nil {
		return layout.Meta{}, fmt.Errorf("read spool: %w", err)
	}
	for _, e := range pending {
		if e.Key == key {
			raw, err := os.ReadFile(e.Path)
			if err != nil {
				return layout.Meta{}, fmt.Errorf("read %s from spool: %w", key, err)
			}
			return layout.DecodeMeta(key, raw)
		}
	}
	return catalog.ReadMeta(ctx, t.r, key)
}
