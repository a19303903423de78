package main

import (
	"fmt"
	"github.com/tailer-backup/tailer/internal/progress"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/compaction"
)

func newCompactCmd(g *globals) *cobra.Command {
	var (
		replica string
		opts    compaction.Options
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "compact --replica URL [--levels 1m,1h] [--dry-run]",
		Short: "Merge small per-poll segments into wider ones",
		Long: `compact merges the replica's per-poll segments into wider segments, so a
restore reads a few objects instead of thousands. --levels are window widths
(UTC-aligned): once a window has ended, the contiguous segments captured in it
become one segment — a minute of 1 s segments one 1-minute segment, an hour
of those one 1-hour segment. Runs never cross a hole or a generation.

Each merged segment is uploaded, read back and checked against the segments
it replaces (every checksum, the same batches byte for byte, the same capture
times, the merged change-id labels) before any of them is deleted. Those are
deleted only once the merged segment is --grace old, so restores that planned
from an earlier listing still find them; run compact again later (or let
'tailer run' do it) to delete them. --grace 0 deletes them at once. Restores
work at every moment: they prefer the widest segment and skip what they have
already applied.

Nothing newer than --live-edge is touched: windows that ended, or segments
uploaded, within it are left to the next run.`,
		Example: `  # see what would be merged
  tailer compact --replica s3://backups/mail --dry-run

  # minutes, then hours (the default), narrow segments deleted an hour later
  tailer compact --replica s3://backups/mail

  # a quiet store: hours and days, delete the narrow copies now
  tailer compact --replica file:///srv/backup/mail --levels 1h,24h --grace 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("grace") && opts.Grace == 0 {
				opts.Grace = -1 // "at once"; the zero value means the default
			}
			if cmd.Flags().Changed("live-edge") && opts.LiveEdge == 0 {
				opts.LiveEdge = -1
			}
			log, r, err := g.setup(cmd, replica)
			if err != nil {
				return err
			}
			c, err := compaction.New(r, opts, log)
			if err != nil {
				return err
			}
			rep, err := c.Run(cmd.Context(), time.Now())
			printCompact(cmd.OutOrStdout(), r.String(), rep, verbose)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&replica, "replica", "", "replica to compact: s3://BUCKET/PREFIX or file:///DIR, required")
	f.DurationSliceVar(&opts.Levels, "levels", compaction.DefaultLevels(), "window widths to merge into, in increasing order")
	f.DurationVar(&opts.LiveEdge, "live-edge", compaction.DefaultLiveEdge, "leave windows that ended, and segments uploaded, less than this long ago")
	f.DurationVar(&opts.Grace, "grace", compaction.DefaultGrace, "delete merged narrow segments once their wide segment is this old (0: at once)")
	f.Int64Var(&opts.MaxBytes, "max-bytes", compaction.DefaultMaxBytes, "largest merged segment, as the sum of its inputs' sizes")
	f.StringVar(&opts.WorkDir, "work-dir", "", "directory for segments being merged and verified (default: the system temp directory)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "report what would be merged and deleted, change nothing")
	f.BoolVarP(&verbose, "verbose", "v", false, "list every merged segment (a dry run always does)")
	// Durations, sizes and counts declare their valid range (limits.go);
	// a new one needs a limit call here and a row in TestLimits.
	limit(f, "levels", atLeast(time.Second, "1m,1h"))
	limit(f, "live-edge", nonNegative("5m"))
	limit(f, "grace", nonNegative("1h; 0 deletes at once"))
	limit(f, "max-bytes", positive("1073741824"))
	return cmd
}

func printCompact(w io.Writer, url string, rep compaction.Report, verbose bool) {
	merged, deleted := "merged", "deleted"
	if rep.DryRun {
		merged, deleted = "would merge", "would delete"
	}
	var inputs int
	var inputBytes int64
	for _, m := range rep.Merged {
		inputs += m.Inputs
		inputBytes += m.InputBytes
		if verbose || rep.DryRun {
			fmt.Fprintf(w, "%s %d segments (%s) into %s, %v window from %s\n", merged, m.Inputs, progress.HumanBytes(m.InputBytes),
				m.Key, m.Level, m.Window.UTC().Format(time.RFC3339))
		}
	}
	switch {
	case len(rep.Merged) == 0:
		fmt.Fprintf(w, "%s: nothing to merge\n", url)
	case rep.DryRun:
		fmt.Fprintf(w, "%s: %s %d segments (%s) into %d\n", url, merged, inputs, progress.HumanBytes(inputBytes), len(rep.Merged))
	default:
		fmt.Fprintf(w, "%s: %s %d segments (%s) into %d, written and verified: %s\n", url, merged, inputs, progress.HumanBytes(inputBytes),
			len(rep.Merged), progress.HumanBytes(rep.WrittenBytes))
	}
	if len(rep.Deleted) > 0 {
		fmt.Fprintf(w, "%s %d narrow segments (%s) held by verified wider ones\n", deleted, len(rep.Deleted), progress.HumanBytes(rep.DeletedBytes))
	}
	if rep.Pending > 0 {
		fmt.Fprintf(w, "kept %d merged narrow segments (%s) for the grace period; a later run deletes them\n", rep.Pending, progress.HumanBytes(rep.PendingBytes))
	}
	for _, k := range rep.Damaged {
		fmt.Fprintf(w, "deleted the damaged merged segment %s (the segments inside it hold its batches)\n", k)
	}
	if !rep.DryRun {
		fmt.Fprintf(w, "downloaded %s, took %v\n", progress.HumanBytes(rep.DownloadedBytes), roundDur(rep.Took))
	}
}
