package main

import (
	"encoding/json"
	"fmt"
	"github.com/tailer-backup/tailer/internal/progress"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/verify"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var (
		opts    verify.Options
		replica string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "verify --replica URL [--deep] [--json]",
		Short: "Check that every object of a replica is intact and every generation restorable",
		Long: `verify downloads every segment and export of the replica (a few at a time,
each deleted after its check) and reads it whole: header, trailer and body
checksums, record counts, capture times, each export's per-family digests.
It checks that each object's header agrees with its name and generation,
that a segment's batches follow each other and fill its range, that every
generation has a readable generation.json of a format this tailer reads and
at least one export, that its segments leave no hole between its first
export and its newest batch, and that overlapping segments hold the same
batches.

For a replica of a filesystem blob store (blobs/), every blob a point
needs must be there and intact: each export's blob manifest (a missing one
is a problem) and the blob commits in each segment's batches name them, and
every blob object is downloaded, decoded and checked against its hash.

--deep also restores each generation into a temporary directory: from each
export to the next one's sequence, comparing the result with the later
export's recorded digests (the segments in between replay to exactly the
state that export captured), then from the newest export to the newest
sequence its chain reaches. It needs room for one restored store in --temp.

Every problem is printed with the object's key; the exit status is then 1.
Otherwise one summary line: objects, bytes, generations, and each
generation's newest restorable sequence. At the head of the newest
generation, what a running 'tailer run' may still be uploading is a warning,
not a problem.`,
		Example: `  tailer verify --replica s3://backups/mail
  tailer verify --replica file:///srv/backup/mail --deep --temp /var/tmp
  tailer verify --replica s3://backups/mail --json | jq '.problems'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, r, err := g.setup(cmd, replica)
			if err != nil {
				return err
			}
			opts.Replica, opts.Log = r, log
			rep, err := verify.Run(cmd.Context(), opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printVerify(out, rep)
			}
			if !rep.OK() {
				return fmt.Errorf("verify found %d %s in %s (%d objects checked): %s", len(rep.Problems), plural(len(rep.Problems), "problem", "problems"), rep.Replica, rep.Objects, problemsWhere(asJSON))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&replica, "replica", "", "replica to check: s3://BUCKET/PREFIX or file:///DIR, required")
	f.BoolVar(&opts.Deep, "deep", false, "also restore each generation into --temp and compare with the exports' digests")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.StringVar(&opts.Temp, "temp", "", "directory for downloads and --deep restores (default: the system's temporary directory)")
	f.IntVar(&opts.Parallel, "parallel", 4, "objects downloaded and checked at once")
	// Durations, sizes and counts declare their valid range (limits.go);
	// a new one needs a limit call here and a row in TestLimits.
	limit(f, "parallel", atLeast(1, "4"))
	return cmd
}

func problemsWhere(asJSON bool) string {
	if asJSON {
		return `each is in "problems" above`
	}
	return "each is listed above"
}

// printVerify prints problems and warnings first, one per line with the
// object's key, then the per-generation lines and the summary.
func printVerify(w io.Writer, rep verify.Report) {
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "BAD   %s\n", p)
	}
	for _, p := range rep.Warnings {
		fmt.Fprintf(w, "WARN  %s\n", p)
	}
	var newest []string
	for _, g := range rep.Generations {
		restorable := "not restorable (no export)"
		if g.Restorable {
			restorable = fmt.Sprintf("restorable %d..%d", g.FirstSeq, g.NewestRestorable)
			newest = append(newest, fmt.Sprintf("%s=%d", g.ID, g.NewestRestorable))
		} else {
			newest = append(newest, g.ID+"=none")
		}
		fmt.Fprintf(w, "  generation %s: %d exports, %d segments, %s, %s\n", g.ID, g.Exports, g.Segments, progress.HumanBytes(g.Bytes), restorable)
		for _, d := range g.Deep {
			status := "FAILED"
			if d.OK {
				status = "ok"
			}
			what := "restorable"
			if d.Against != "" {
				what = "equals " + d.Against
			}
			fmt.Fprintf(w, "    deep: export %d + %d batches -> seq %d: %s (%s)\n", d.Base, d.Batches, d.Seq, what, status)
		}
	}
	if b := rep.Blobs; b != nil {
		fmt.Fprintf(w, "  blobs: %d objects, %s, each decoded and checked against its hash; %d referenced by the replica's points, %d by none (retention deletes those)\n",
			b.Objects, progress.HumanBytes(b.Bytes), b.Referenced, b.Unreferenced)
	}
	verdict := "OK"
	if !rep.OK() {
		verdict = "FAILED"
	}
	deep := ""
	if rep.Deep {
		deep = ", deep"
	}
	fmt.Fprintf(w, "%s%s: %s: %d objects, %s, %d %s; newest restorable seq: %s\n", verdict, deep, rep.Replica,
		rep.Objects, progress.HumanBytes(rep.Bytes), len(rep.Generations), plural(len(rep.Generations), "generation", "generations"), orNone(strings.Join(newest, ", ")))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
