package main

import (
	"fmt"
	"github.com/tailer-backup/tailer/internal/progress"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/retention"
)

func newPruneCmd(g *globals) *cobra.Command {
	var (
		replica, age string
		policy       retention.Policy
		verbose      bool
	)
	cmd := &cobra.Command{
		Use:   "prune --replica URL [--retention 7d] [--retain-exports N] [--dry-run]",
		Short: "Delete the exports, segments and generations no retained point needs",
		Long: `prune applies a retention policy to a replica. A point in time is restorable
from the newest export at or before it plus the segments after that export,
so prune keeps the oldest export some retained point needs and everything
after it, and deletes what is older: earlier exports, the segments holding
only batches before that export, and older generations whole (their
generation.json last).

--retention D keeps every moment of the last D restorable (7d, 36h, 2w):
the export 'restore --time' would start from at now - D is kept.
--retain-exports N keeps the N newest exports, across generations, each with
the segments after it. With both, whichever keeps more wins. The newest
export and its chain are never deleted, nor is a generation 'tailer run'
has just started.

Only exports that verify (read whole: every checksum and digest) count:
a damaged export is kept but skipped, so the older export a restore would
fall back to stays with its segments. prune reads the newest export and
each rule's base in full; when no export verifies it deletes nothing and
fails.
For a filesystem blob store (blobs/), each export's blob manifest goes with
its export, and a blob only when no kept export's manifest and no kept
segment references it and it is older than a day (it may belong to a
segment still on its way): a blob a kept point needs stays, even long
after Stalwart purged it. Blob objects are deleted only while prune holds
the replica's lease (it takes a free one without waiting); while a
'tailer run' holds it, prune leaves blobs to that tailer's maintenance,
which also counts what is still in its spool, and says so.

It is safe while 'tailer run' ships and while restores of retained points
read the replica. Every deletion is logged; --dry-run only reports.`,
		Example: `  # keep a week; show first what would go
  tailer prune --replica s3://backups/mail --retention 7d --dry-run
  tailer prune --replica s3://backups/mail --retention 7d

  # keep the 3 newest exports (and everything after the oldest of them)
  tailer prune --replica file:///srv/backup/mail --retain-exports 3

  # a month, but never fewer than 5 exports
  tailer prune --replica s3://backups/mail --retention 30d --retain-exports 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if age != "" {
				d, err := retention.ParseAge(age)
				if err != nil {
					return fmt.Errorf("--retention: %w", err)
				}
				policy.MaxAge = d
			}
			if err := policy.Validate(); err != nil {
				return err
			}
			log, r, err := g.setup(cmd, replica)
			if err != nil {
				return err
			}
			ctx, done, err := pruneBlobs(cmd.Context(), cmd.OutOrStdout(), r, &policy)
			if err != nil {
				return err
			}
			defer done()
			rep, err := retention.Apply(ctx, r, policy, time.Now(), log)
			printPrune(cmd.OutOrStdout(), r.String(), rep, verbose)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&replica, "replica", "", "replica to prune: s3://BUCKET/PREFIX or file:///DIR, required")
	f.StringVar(&age, "retention", "", "keep every moment of this last period restorable, e.g. 7d, 36h, 2w")
	f.IntVar(&policy.KeepExports, "retain-exports", 0, "keep the N newest exports and everything after the oldest of them")
	f.BoolVar(&policy.DryRun, "dry-run", false, "report what would be deleted, delete nothing")
	f.BoolVarP(&verbose, "verbose", "v", false, "list every object deleted (a dry run always does)")
	// Durations, sizes and counts declare their valid range (limits.go);
	// a new one needs a limit call here and a row in TestLimits.
	limit(f, "retention", positive("7d").parsedBy(parseAge))
	limit(f, "retain-exports", nonNegative("3; 0 is off"))
	return cmd
}

func printPrune(w io.Writer, url string, rep retention.Report, verbose bool) {
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
	}
	kinds := map[retention.Kind]int{}
	for _, d := range rep.Deleted {
		kinds[d.Kind]++
		if verbose || rep.DryRun {
			fmt.Fprintf(w, "%s %s (%s): %s\n", verb, d.Key, progress.HumanBytes(d.Size), d.Reason)
		}
	}
	if rep.Objects == 0 {
		fmt.Fprintf(w, "%s: nothing to delete\n", url)
	} else {
		fmt.Fprintf(w, "%s: %s %d objects, %s: %d generations whole, %d exports, %d segments", url, verb, rep.Objects,
			progress.HumanBytes(rep.Bytes), len(rep.GenerationsDeleted), kinds[retention.KindExport], kinds[retention.KindSegment])
		if n, b := kinds[retention.KindManifest], kinds[retention.KindBlob]; n+b > 0 {
			fmt.Fprintf(w, ", %d blob manifests, %d blobs", n, b)
		}
		fmt.Fprintln(w)
	}
	if rep.Oldest.Generation != "" {
		fmt.Fprintf(w, "oldest restorable point kept: generation %s, export at seq %d taken %s (%s)\n", rep.Oldest.Generation,
			rep.Oldest.ExportSeq, rep.Oldest.ExportTime.UTC().Format(time.RFC3339), rep.Oldest.Why)
	}
	fmt.Fprintf(w, "kept %d objects, %s\n", rep.KeptObjects, progress.HumanBytes(rep.KeptBytes))
	for _, u := range rep.Unverified {
		fmt.Fprintf(w, "warning: export %s does not verify; it was kept but not counted (check the replica with 'tailer verify'): %v\n", u.Key, u.Err)
	}
	if rep.ExportTimesFromListing > 0 {
		fmt.Fprintf(w, "warning: %d exports had an unreadable header and were dated by their upload time (see the log)\n", rep.ExportTimesFromListing)
	}
	if rep.UnknownKeys > 0 {
		fmt.Fprintf(w, "%d objects under the prefix were not written by tailer and were left alone\n", rep.UnknownKeys)
	}
}
