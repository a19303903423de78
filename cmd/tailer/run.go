package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/compaction"
	"github.com/tailer-backup/tailer/internal/diskguard"
	"github.com/tailer-backup/tailer/retention"
)

func newRunCmd(g *globals) *cobra.Command {
	var (
		cfg      agent.Config
		replicas []string
		listen   string
		levels   string
		keepFor  string
		minFree  string
		depth    int
	)
	cmd := &cobra.Command{
		Use:   "run --db DIR --replica URL",
		Short: "Tail a live store and ship it to a replica, forever (the sidecar)",
		Long: `run opens the store as a RocksDB secondary (no lock, nothing written in its
directory), reads new WAL batches as soon as the WAL grows, seals them into a
segment in the local spool when the oldest is --max-delay old (not more often
than --min-put-interval, at once at 64 MiB) and uploads it; every --poll it
catches up with the primary and checks lineage, free space and gaps. Each generation
starts with a full export taken from a hard-linked snapshot of the store;
a new generation starts on the first run, after a WAL gap (tailer was down
while the primary deleted the WAL it needed), or when the store is replaced.

--scratch must be on the primary's filesystem (hard links) and outside its
directory. The spool survives crashes and bucket outages: what it holds is
uploaded first at the next start. SIGTERM/SIGINT seal and ship what is in
hand, then exit 0.

Only one 'tailer run' writes to a replica prefix: it holds a lease object
(lease.json, conditional writes) that it renews every --lease-ttl/3. A second
one exits naming the holder (or waits, --lease-wait); --force-takeover takes
the lease from a tailer that is gone for good. If renewals keep failing, the
holder stops uploading --lease-margin before its lease could be taken, and exits.

Metrics (Prometheus), /healthz and /readyz are served on --listen.`,
		Example: `  # Stalwart's store in /var/lib/stalwart, backups to MinIO:
  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
  tailer run --db /var/lib/stalwart --scratch /var/lib/stalwart.tailer \
    --replica 's3://backups/mail?endpoint=http://minio:9000'

  # Two replicas: an on-site MinIO for fast restores, AWS S3 off-site:
  tailer run --db /var/lib/stalwart --replica 's3://backups/mail?endpoint=http://minio:9000' \
    --replica s3://offsite-backups/mail

  # Stalwart keeps the mail in a filesystem blob store:
  tailer run --db /var/lib/stalwart --blobs /var/lib/stalwart-blobs --replica s3://backups/mail

  # To a local directory, polling every 500 ms, an export every 6 hours:
  tailer run --db /var/lib/stalwart --replica file:///srv/backup/mail --poll 500ms --export-interval 6h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mf, err := diskguard.Parse(minFree)
			if err != nil {
				return fmt.Errorf("--min-free %w", err)
			}
			cfg.MinFree = &mf
			if depth < 0 {
				return fmt.Errorf("--blob-depth %d: want 0 or more (Stalwart's depth setting of its filesystem blob store, 2 by default)", depth)
			}
			cfg.BlobDepth = &depth
			lv, err := parseLevels(levels)
			if err != nil {
				return err
			}
			if len(lv) > 0 {
				cfg.Compaction = &compaction.Options{Levels: lv}
			}
			if keepFor != "" {
				if cfg.Retention.MaxAge, err = retention.ParseAge(keepFor); err != nil {
					return fmt.Errorf("--retention %q: %w", keepFor, err)
				}
			}
			if cfg.LeaseTTL > 0 && (cfg.LeaseMargin < 0 || cfg.LeaseMargin >= cfg.LeaseTTL) {
				return fmt.Errorf("--lease-margin %v must be shorter than --lease-ttl %v (and not negative; 0 picks a tenth of the TTL, at least 1s where the TTL allows)", cfg.LeaseMargin, cfg.LeaseTTL)
			}
			if len(replicas) == 0 {
				return errors.New("no --replica given: e.g. --replica s3://backups/stalwart or --replica file:///var/backups/stalwart")
			}
			var log *slog.Logger
			for _, u := range replicas {
				l, r, err := g.setup(cmd, u)
				if err != nil {
					return err
				}
				log = l
				cfg.Replicas = append(cfg.Replicas, r)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			cfg.Registry, cfg.Log = reg, log
			a, err := agent.New(cfg)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if listen != "" {
				srv, err := serveHTTP(listen, reg, a.Ready, log)
				if err != nil {
					return err
				}
				defer srv.Shutdown(context.Background())
			}
			log.Info("tailer running", "db", cfg.DB, "blobs", cfg.Blobs, "replicas", replicas, "poll", cfg.Poll, "max_delay", cfg.MaxDelay, "min_put_interval", cfg.MinPutInterval, "export_interval", cfg.ExportInterval)
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DB, "db", "", "the live store's directory (Stalwart's RocksDb.path), required")
	f.StringArrayVar(&replicas, "replica", nil, "where to ship: s3://BUCKET/PREFIX or file:///DIR, required; repeat it to ship to several replicas (each with its own spool, retries, lag and lease)")
	f.StringVar(&cfg.Scratch, "scratch", "", "tailer's working directory on the store's filesystem, outside it (default: DB.tailer beside the store)")
	f.StringVar(&cfg.Spool, "spool", "", "durable upload queue (default: SCRATCH/spool)")
	f.StringVar(&cfg.Blobs, "blobs", "", "Stalwart's filesystem blob store (the directory of its \"fs\" blob store), when the mail itself is kept on disk: its files are shipped too, each before the segments and exports that reference it (found by itself when --db is an old layout's db-path holding idx/ and blobs/)")
	f.IntVar(&depth, "blob-depth", 2, "directory levels of the blob store (Stalwart's depth setting)")
	limit(f, "blob-depth", nonNegative("2, Stalwart's default; more than 5 counts as 5"))
	f.DurationVar(&cfg.Poll, "poll", time.Second, "backstop interval: how often to catch the secondary up, check lineage, free space and WAL gaps (batches are read as soon as the WAL grows, whatever this is)")
	f.DurationVar(&cfg.MaxDelay, "max-delay", agent.DefaultMaxDelay, "seal a segment when its oldest batch was read this long ago: a commit reaches the spool within about this, the replica one PUT later")
	f.DurationVar(&cfg.MinPutInterval, "min-put-interval", 0, "seal segments no more often than this (each is one PUT per replica), unless one reaches the size limit; 0: --max-delay alone bounds them, at most one a --max-delay under steady load")
	f.DurationVar(&cfg.ExportInterval, "export-interval", 24*time.Hour, "how often to take a full export (0 disables periodic exports; a new generation always takes one)")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long to keep uploading the spool before exiting")
	f.Int64Var(&cfg.SpoolMaxBytes, "spool-max-bytes", 0, "cap on the spool; when a long bucket outage fills it, sealing pauses (nothing is dropped) until uploads free room (0: no cap)")
	f.StringVar(&minFree, "min-free", "5%", "free space to leave on the store's filesystem (and --scratch's, --spool's): below it tailer stops sealing and exporting and drops its WAL pins (a gap, then a new generation) rather than fill the mail server's disk; a percentage (5%), a size (2GiB) or 0 to disable")
	f.StringVar(&levels, "compact-levels", "1m,1h", "merge per-poll segments into windows of these widths, comma-separated (\"\" disables compaction)")
	f.StringVar(&keepFor, "retention", "", "keep every moment of this last period restorable (e.g. 7d, 2w, 36h) and delete what no retained point needs (default: keep everything)")
	f.IntVar(&cfg.Retention.KeepExports, "retain-exports", 0, "also keep the N newest exports with the segments after them")
	f.DurationVar(&cfg.MaintenanceInterval, "maintenance-interval", 5*time.Minute, "how often compaction and retention run (negative: never)")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", 30*time.Second, "life of the replica's single-writer lease without renewal (negative: no lease, for servers without conditional writes)")
	f.DurationVar(&cfg.LeaseWait, "lease-wait", 0, "wait this long for another tailer's lease on the replica to expire (default: exit at once, naming the holder)")
	f.DurationVar(&cfg.LeaseMargin, "lease-margin", 0, "stop uploading this long before the lease's recorded expiry when renewals fail; must exceed the clock skew between the hosts sharing the replica (default: --lease-ttl/10, at least 1s where the TTL allows)")
	f.BoolVar(&cfg.ForceTakeover, "force-takeover", false, "take the replica's lease even if another tailer holds it (that tailer stops at its next renewal)")
	f.DurationVar(&cfg.PinInterval, "wal-pin-interval", 50*time.Millisecond, "new WAL files of the store are hard-linked into --scratch as they appear (directory watch), so batches survive their deletion by the primary; this is how often the directory is also scanned (negative disables pinning)")
	f.DurationVar(&cfg.ReadyMaxLag, "ready-max-lag", 2*time.Minute, "/readyz fails while an object has waited longer than this in the spool (the replica falls behind)")
	f.StringVar(&listen, "listen", "127.0.0.1:9464", "address for /metrics, /healthz and /readyz (empty disables)")
	// Durations, sizes and counts declare their valid range (limits.go);
	// a new one needs a limit call here and a row in TestLimits.
	limit(f, "poll", positive("1s"))
	limit(f, "max-delay", positive("200ms"))
	limit(f, "min-put-interval", nonNegative("1s; 0 is no bound beyond --max-delay"))
	limit(f, "export-interval", nonNegative("24h; 0 disables periodic exports"))
	limit(f, "shutdown-timeout", positive("30s"))
	limit(f, "spool-max-bytes", nonNegative("10737418240; 0 is no cap"))
	limit(f, "retention", positive("7d; leave it unset to keep everything").parsedBy(parseAge))
	limit(f, "retain-exports", nonNegative("3; 0 is off"))
	limit(f, "maintenance-interval", positive("5m").orNegative("never"))
	limit(f, "lease-ttl", atLeast(minLeaseTTL, "30s").orNegative("no lease"))
	limit(f, "lease-wait", nonNegative("1m; 0 exits at once"))
	limit(f, "lease-margin", nonNegative("3s; 0 picks a tenth of --lease-ttl"))
	limit(f, "wal-pin-interval", positive("50ms").orNegative("no pinning"))
	limit(f, "ready-max-lag", positive("2m"))
	return cmd
}

// minLeaseTTL is the shortest --lease-ttl: the lease is renewed every
// TTL/3, and a renewal must fit a round trip to the replica with room to
// spare, or the lease is lost while its holder is alive.
const minLeaseTTL = 500 * time.Millisecond

// serveHTTP serves metrics and health (and readiness, when ready is not
// nil) on a listener the caller shuts down.
func serveHTTP(addr string, reg *prometheus.Registry, ready func() (bool, string), log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w (choose a free port, or --listen '' to disable)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	if ready != nil {
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if ok, why := ready(); !ok {
				http.Error(w, why, http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("serving metrics and health", "addr", ln.Addr().String())
	return srv, nil
}

// parseLevels reads --compact-levels.
func parseLevels(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--compact-levels %q: want positive durations like 1m,1h", s)
		}
		out = append(out, d)
	}
	return out, nil
}
