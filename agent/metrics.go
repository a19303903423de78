package agent

import "github.com/prometheus/client_golang/prometheus"

// metrics are the agent's Prometheus collectors, registered on the
// registry the caller injects (never a package global).
type metrics struct {
	primaryLatest, lastShipped, lastPollOK   prometheus.Gauge
	exportSeconds, exportBytes               prometheus.Gauge
	pinFiles, pinBytes, spoolFull            prometheus.Gauge
	pinnedBatches                            prometheus.Counter
	segments, batches, batchBytes            prometheus.Counter
	gaps, generations, exports, exportErrors prometheus.Counter
	pollErrors, changelogUndecoded           prometheus.Counter
	compactMerged, compactDeleted            prometheus.Counter
	retentionDeleted, maintenanceErrors      prometheus.Counter
	detached, seqReuse                       prometheus.Counter
	diskGuardActive                          prometheus.Gauge
	diskGuardTrips                           prometheus.Counter
	changes                                  *prometheus.CounterVec
	blobsShipped, blobBytes, blobsMissing    prometheus.Counter
	blobsPending                             prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	g := func(name, help string) prometheus.Gauge {
		c := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	c := func(name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(x)
		return x
	}
	changes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailer_changes_shipped_total",
		Help: "Stalwart changelog entries (one per account, collection and change id) sealed into segments, by collection.",
	}, []string{"collection"})
	reg.MustRegister(changes)
	return &metrics{
		changes:            changes,
		changelogUndecoded: c("tailer_changelog_undecoded_total", "Changelog entries tailer could not decode (malformed or unknown collection); shipped as is."),
		primaryLatest:      g("tailer_primary_latest_seq", "Latest sequence number of the primary, as the secondary sees it."),
		lastShipped:        g("tailer_last_shipped_seq", "Newest sequence number sealed into the spool."),
		lastPollOK:         g("tailer_last_poll_success_timestamp_seconds", "Unix time of the last poll that caught up without error."),
		spoolFull:          g("tailer_spool_full", "1 while sealing is paused because the spool reached --spool-max-bytes."),
		compactMerged:      c("tailer_compaction_merged_total", "Wide segments written by compaction (each replaces several narrow ones)."),
		compactDeleted:     c("tailer_compaction_deleted_total", "Narrow segments deleted after their wide segment was verified."),
		retentionDeleted:   c("tailer_retention_deleted_total", "Objects deleted by retention (no retained restore point needed them)."),
		maintenanceErrors:  c("tailer_maintenance_errors_total", "Compaction or retention rounds that failed (retried next round)."),
		diskGuardActive:    g("tailer_disk_guard_active", "1 while free space on the store's filesystem is below --min-free: no sealing, no exports, no WAL pins (a gap, then a new generation, rather than a full disk)."),
		diskGuardTrips:     c("tailer_disk_guard_trips_total", "Times free space fell below --min-free and tailer paused backups to leave the space to the mail server."),
		detached:           c("tailer_replica_detached_total", "Times a replica was detached because its spool filled (a new generation re-includes it)."),
		seqReuse:           c("tailer_sequence_reuse_total", "Starts at which the store's batch at the last shipped sequence number differed from the shipped one: the store lost writes (power loss) and reused their sequence numbers; each starts a new generation."),
		pinFiles:           g("tailer_wal_pins", "WAL files of the primary tailer holds hard links to (released once shipped)."),
		pinBytes:           g("tailer_wal_pin_bytes", "Bytes of the pinned WAL files."),
		pinnedBatches:      c("tailer_batches_from_pins_total", "WAL batches read by tailer's own WAL reader: from its pinned copies of the primary's WAL files, or from the primary's files in place when pinning is off."),
		exportSeconds:      g("tailer_export_duration_seconds", "Duration of the last full export."),
		exportBytes:        g("tailer_export_bytes", "Size of the last full export object."),
		segments:           c("tailer_segments_total", "Segments sealed into the spool."),
		batches:            c("tailer_batches_total", "WAL batches sealed into segments."),
		batchBytes:         c("tailer_batch_bytes_total", "Raw WriteBatch bytes sealed into segments."),
		gaps:               c("tailer_gaps_total", "WAL gaps detected (each starts a new generation)."),
		generations:        c("tailer_generations_total", "Generations started."),
		exports:            c("tailer_exports_total", "Full exports sealed into the spool."),
		exportErrors:       c("tailer_export_errors_total", "Full exports that failed."),
		pollErrors:         c("tailer_poll_errors_total", "Polls that failed (retried at the next poll)."),
		blobsShipped:       c("tailer_blobs_shipped_total", "Blob files of the filesystem blob store queued into the spool (each once, for every replica lacking it)."),
		blobBytes:          c("tailer_blob_bytes_shipped_total", "Bytes of the blob files queued into the spool."),
		blobsMissing:       c("tailer_blobs_missing_total", "Blobs a segment or export references that tailer could not back up (the file was purged first, or never matched its hash); each is logged at ERROR with its hash and owner."),
		blobsPending:       g("tailer_blobs_pending", "Blob files seen but not queued yet: still being written, or held while backups are paused."),
	}
}
