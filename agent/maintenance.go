package agent

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/tailer-backup/tailer/compaction"
	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/retention"
)

// maintain compacts narrow segments and applies retention every
// MaintenanceInterval, in its own goroutine so a long merge never delays
// tailing. It runs only inside `run`, which holds the replica's lease, so
// one writer does it. Failures are logged and counted; the next round
// finishes what a failed one left (both are idempotent).
func (a *Agent) maintain(ctx context.Context) {
	if a.cfg.MaintenanceInterval <= 0 || (a.cfg.Compaction == nil && a.cfg.Retention.MaxAge <= 0 && a.cfg.Retention.KeepExports <= 0) {
		return
	}
	comps := make([]*compaction.Compactor, len(a.targets))
	if a.cfg.Compaction != nil {
		opts := *a.cfg.Compaction
		if opts.WorkDir == "" {
			opts.WorkDir = filepath.Join(a.cfg.Scratch, "compact")
		}
		if err := os.MkdirAll(opts.WorkDir, owned.DirMode); err != nil {
			a.log.Error("compaction is off: cannot create its work dir", "dir", opts.WorkDir, "err", err)
			return
		}
		for i, t := range a.targets {
			c, err := compaction.New(t.r, opts, a.log)
			if err != nil {
				a.log.Error("compaction is off", "replica", t.r.String(), "err", err)
				continue
			}
			comps[i] = c
		}
	}
	// Retention verifies the exports it counts by reading them whole:
	// remember the outcome between rounds so each is read once.
	policy := a.cfg.Retention
	if policy.Cache == nil {
		policy.Cache = retention.NewVerifyCache()
	}
	tick := time.NewTicker(a.cfg.MaintenanceInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if a.diskLow.Load() {
			continue // compaction's work files would take the space the guard leaves to the mail server
		}
		for i, t := range a.targets {
			a.maintainOne(ctx, t, comps[i], policy)
		}
	}
}

// maintainOne compacts and prunes one replica.
func (a *Agent) maintainOne(ctx context.Context, t *target, comp *compaction.Compactor, policy retention.Policy) {
	if comp != nil {
		rep, err := comp.Run(ctx, a.cfg.Now())
		a.m.compactMerged.Add(float64(len(rep.Merged)))
		a.m.compactDeleted.Add(float64(len(rep.Deleted)))
		if err != nil && ctx.Err() == nil {
			a.m.maintenanceErrors.Inc()
			a.log.Error("compaction failed; the next round retries", "replica", t.r.String(), "err", err)
		} else if len(rep.Merged)+len(rep.Deleted) > 0 {
			a.log.Info("compacted segments", "merged", len(rep.Merged), "deleted", len(rep.Deleted), "written_bytes", rep.WrittenBytes, "took", rep.Took)
		}
	}
	if policy.MaxAge > 0 || policy.KeepExports > 0 {
		if a.blobs != nil {
			policy.Blobs = a.blobs.guard(t)
		}
		rep, err := retention.Apply(ctx, t.r, policy, a.cfg.Now(), a.log)
		a.m.retentionDeleted.Add(float64(rep.Objects))
		if err != nil && ctx.Err() == nil {
			a.m.maintenanceErrors.Inc()
			a.log.Error("retention failed; the next round retries", "replica", t.r.String(), "err", err)
		}
	}
}
