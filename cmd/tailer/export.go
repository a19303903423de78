package main

import (
	"fmt"
	"github.com/tailer-backup/tailer/dumpsource"
	"github.com/tailer-backup/tailer/internal/progress"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/export"
)

func newExportCmd(g *globals) *cobra.Command {
	var db, replica, scratch, format, out, blobs string
	var depth int
	var progressEvery time.Duration
	cmd := &cobra.Command{
		Use:   "export --db DIR (--replica URL | --format stalwart --out DIR)",
		Short: "Take one consistent full export of a live store, now",
		Long: `export freezes the live store from outside (hard links into --scratch, no
lock, nothing written in its directory), streams every column family into a
full export consistent at one sequence number, and uploads it to the replica
as a new generation that 'tailer restore' can restore. This is the hot
export Stalwart's own 'stalwart -e' cannot take while Stalwart runs.

Do not point it at a replica prefix a 'tailer run' is shipping to: run
takes its own exports (--export-interval).

--format stalwart --out DIR writes Stalwart's own export files instead (one
LZ4-framed file per subspace, what 'stalwart --export' writes and
'stalwart --import' reads), from the same frozen view: consistent at one
sequence number, without stopping Stalwart. Use them to move to another
DataStore (PostgreSQL, FoundationDB, ...) or to hand a store to Stalwart's
own import. --out must not exist or be empty; nothing goes to a replica.
When Stalwart keeps its blobs (the mail) in a filesystem blob store, give
it with --blobs DIR (and --blob-depth as configured): linked blobs not in
RocksDB are read from there and exported too, as Stalwart's own export
does; without it they are left out and counted.`,
		Example: `  tailer export --db /var/lib/stalwart --replica file:///srv/backup/mail-exports

  # Stalwart's import files, hot
  tailer export --db /var/lib/stalwart --format stalwart --out /srv/stalwart-export
  stalwart --config /etc/stalwart/config.json --import /srv/stalwart-export   # on the new store`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set := cmd.Flags().Changed
			if err := checkFormat(format, set, []string{"replica"}, []string{"out", "progress", "blobs", "blob-depth"}); err != nil {
				return err
			}
			if format == formatStalwart {
				log, err := g.logger()
				if err != nil {
					return err
				}
				if out == "" {
					return fmt.Errorf("--format stalwart needs --out DIR: a new or empty directory for Stalwart's import files")
				}
				so := stalwartOptions(log, progressEvery)
				if set("blob-depth") && blobs == "" {
					return fmt.Errorf("--blob-depth goes with --blobs DIR")
				}
				if blobs != "" {
					l, err := blobfs.NewLayout(blobs, depth)
					if err != nil {
						return fmt.Errorf("--blob-depth: %w", err)
					}
					if st, err := os.Stat(blobs); err != nil || !st.IsDir() {
						return fmt.Errorf("--blobs %s: not a directory (%v): give Stalwart's filesystem blob store", blobs, err)
					}
					so.Blobs = dumpsource.BlobDir{Layout: l}
				}
				sum, err := dumpsource.FromLive(cmd.Context(), db, scratch, out, so)
				if err != nil {
					return err
				}
				printStalwartSummary(cmd.OutOrStdout(), sum)
				return nil
			}
			log, r, err := g.setup(cmd, replica)
			if err != nil {
				return err
			}
			if db == "" {
				return fmt.Errorf("no --db given: point it at Stalwart's RocksDB directory")
			}
			rep := newExportProgress(log, db)
			meta, res, err := agent.OnDemandExport(cmd.Context(), db, scratch, r, log, func(s export.Stats) {
				log.Debug("exporting", "family", s.Family, "keys", s.Keys, "bytes", s.Written)
				rep.Set(s.Written)
			})
			if err != nil {
				rep.Abort()
				return err
			}
			rep.Done()
			fmt.Fprintf(cmd.OutOrStdout(), "exported %s at seq %d: %d keys, %s raw, %s written in %s (generation %s)\n",
				db, res.Seq, res.Stats.Keys, progress.HumanBytes(res.Stats.RawBytes), progress.HumanBytes(res.Stats.Written), roundDur(res.Stats.Elapsed), meta.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "", "the live store's directory, required")
	f.StringVar(&replica, "replica", "", "where to upload: s3://BUCKET/PREFIX or file:///DIR, required with --format tailer")
	f.StringVar(&scratch, "scratch", "", "working directory on the store's filesystem, outside it (default: DB.tailer)")
	f.StringVar(&format, "format", formatTailer, "tailer: a restorable generation in --replica; stalwart: Stalwart's import files in --out")
	f.StringVar(&out, "out", "", "with --format stalwart: directory for the files (must not exist or be empty)")
	f.DurationVar(&progressEvery, "progress", 5*time.Second, "with --format stalwart: how often to log progress")
	// Durations, sizes and counts declare their valid range (limits.go);
	// a new one needs a limit call here and a row in TestLimits.
	limit(f, "progress", positive("5s"))
	f.StringVar(&blobs, "blobs", "", "with --format stalwart: Stalwart's filesystem blob store, to export the blobs kept there too")
	f.IntVar(&depth, "blob-depth", blobfs.DefaultDepth, "with --blobs: the depth of Stalwart's blob store (its configuration's depth)")
	limit(f, "blob-depth", nonNegative("2, Stalwart's default; more than 5 counts as 5"))
	return cmd
}
