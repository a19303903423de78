package agent

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/lease"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/spool"
)

// target is one replica the agent ships to, with its own spool, uploader
// (retries, lag), lease and metrics, so a slow or dead bucket never holds
// back the others nor the tailing.
type target struct {
	r       uploader.Replica
	spool   *spool.Spool
	shipper *spool.Shipper
	lease   *lease.Holder
	// detached: its spool reached SpoolMaxBytes, so new objects are not
	// queued for it any more; once its spool has drained, a new generation
	// (with an export) brings it back in step with the others.
	detached bool
}

// openTargets opens a spool and an uploader per replica. Each spool is
// keyed by the replica's identity (bucket and prefix, not the URL's
// spelling), so the objects queued for a replica are found again whatever
// the order of --replica flags and however its URL is written; a queue an
// older tailer named after the URL is moved under the new name. Spool
// directories no configured replica owns are reported, loudly, and left
// alone.
func openTargets(cfg Config) ([]*target, error) {
	var out []*target
	owned := map[string]bool{}
	for _, r := range cfg.Replicas {
		sp, moved, err := spool.OpenReplicaSpool(cfg.Spool, r)
		if err != nil {
			return nil, fmt.Errorf("open the spool for %s under %s: %w", r, cfg.Spool, err)
		}
		if moved != "" {
			cfg.Log.Info("found this replica's spool under an earlier name; moved it", "replica", r.String(), "from", moved, "to", sp.Dir())
		}
		owned[sp.Dir()] = true
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"replica": r.String()}, cfg.Registry)
		out = append(out, &target{r: r, spool: sp, shipper: spool.NewShipper(sp, r, reg, cfg.Log)})
	}
	return out, reportOrphans(cfg, owned)
}

// reportOrphans warns about spool directories under cfg.Spool that none
// of the configured replicas owns: their objects are not uploaded by this
// run, and the operator must decide.
func reportOrphans(cfg Config, owned map[string]bool) error {
	infos, err := spool.ListSpools(cfg.Spool)
	if err != nil {
		return err
	}
	for _, i := range infos {
		if owned[i.Dir] {
			continue
		}
		who := "unknown (an older tailer wrote it without recording its replica)"
		if i.Owner != nil {
			who = i.Owner.Replica
		}
		if i.Objects == 0 {
			cfg.Log.Info("empty spool directory of a replica not configured now; it may be removed", "dir", i.Dir, "replica", who)
			continue
		}
		cfg.Log.Error("ORPHANED SPOOL: a spool directory holds objects for a replica this run does not ship to; they are NOT uploaded. Run tailer once with that --replica (and the same --spool) to upload them, or remove the directory if they are not needed",
			"dir", i.Dir, "replica", who, "objects", i.Objects, "bytes", i.Bytes)
	}
	return nil
}

// attached are the targets new objects are queued for. It is read by
// the export goroutine too, hence the lock.
func (a *Agent) attached() []*target {
	a.expMu.Lock()
	defer a.expMu.Unlock()
	var out []*target
	for _, t := range a.targets {
		if !t.detached {
			out = append(out, t)
		}
	}
	return out
}

// publish writes an object once, into the first attached target's spool
// (fill streams its bytes: a segment, generation.json or a whole export),
// then queues the same file for every other attached target (hard links),
// and wakes their uploaders.
func (a *Agent) publish(key string, fill func(io.Writer) error) error {
	ts := a.attached()
	if len(ts) == 0 {
		return fmt.Errorf("queue %s: every replica is detached (spools full)", key)
	}
	return publishTo(ts, key, fill)
}

// publishTo is publish for chosen targets (at least one): a blob object
// is queued only for the replicas that lack it.
func publishTo(ts []*target, key string, fill func(io.Writer) error) error {
	f, err := ts[0].spool.Create(key)
	if err != nil {
		return fmt.Errorf("spool %s: %w", key, err)
	}
	if err := fill(f); err != nil {
		f.Abort()
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	for _, t := range ts[1:] {
		if err := t.spool.Link(key, f.Path()); err != nil {
			return err
		}
	}
	for _, t := range ts {
		t.shipper.Notify()
	}
	return nil
}

// acquireLeases takes every replica's single-writer lease, and keeps them
// until keepCtx ends or they are released; lost is called if any is taken
// over or lapses. Each shipper checks its lease before every upload, so
// nothing is uploaded once the lease is no longer valid, even before lost
// has run.
func (a *Agent) acquireLeases(ctx, keepCtx context.Context, lost func(error)) error {
	for _, t := range a.targets {
		h, err := lease.Acquire(ctx, t.r, lease.Options{TTL: a.cfg.LeaseTTL, Wait: a.cfg.LeaseWait, Margin: a.cfg.LeaseMargin,
			Force: a.cfg.ForceTakeover, DB: a.cfg.DB, Instance: a.instance})
		if err != nil {
			return err
		}
		t.lease = h
		t.shipper.Guard(h.Check)
		a.log.Info("holding the replica's single-writer lease", "replica", t.r.String(), "ttl", a.cfg.LeaseTTL)
		go h.Keep(keepCtx, lost)
	}
	return nil
}

// releaseLeases lets the next tailer in at once after a clean stop.
func (a *Agent) releaseLeases() {
	for _, t := range a.targets {
		if t.lease == nil {
			continue
		}
		if err := t.lease.Release(context.Background()); err != nil {
			a.log.Warn("could not release the lease; the next tailer waits for it to expire", "replica", t.r.String(), "err", err)
		}
	}
}

// runShippers starts every uploader; the returned func stops them.
func (a *Agent) runShippers(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, t := range a.targets {
		wg.Add(1)
		go func() { defer wg.Done(); t.shipper.Run(ctx) }()
	}
	return func() { cancel(); wg.Wait() }
}

// drainAll uploads what every spool holds, all replicas at once.
func (a *Agent) drainAll(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(a.targets))
	for i, t := range a.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.shipper.Drain(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", t.r, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
