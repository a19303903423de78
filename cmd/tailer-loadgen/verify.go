package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/store"
)

func newVerifyCmd() *cobra.Command {
	var db, marks, blobs string
	var seq uint64
	var blobDepth int
	cmd := &cobra.Command{
		Use:   "verify --db DIR --marks FILE [--seq N] [--blobs DIR]",
		Short: "Compare a store (e.g. a restore) with a recorded mark",
		Long: `verify opens --db read-only, digests every column family and compares them
with the mark whose sequence number is --seq (default: the last mark in the
file). It prints OK or DIFF per family and exits non-zero on any difference.
A family present on one side only is a difference, unless it is empty.
Restore to the mark's sequence number first (tailer restore --seq N).`,
		Example: `  tailer restore --replica file:///tmp/bucket --to /tmp/restored --seq 48211
  tailer-loadgen verify --db /tmp/restored --marks /tmp/marks.jsonl --seq 48211`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" || marks == "" {
				return errors.New("verify needs --db DIR and --marks FILE")
			}
			all, err := loadgen.ReadMarks(marks)
			if err != nil {
				return err
			}
			if len(all) == 0 {
				return fmt.Errorf("no marks in %s", marks)
			}
			m := all[len(all)-1]
			if cmd.Flags().Changed("seq") {
				found := false
				for _, x := range all {
					if x.Seq == seq {
						m, found = x, true
					}
				}
				if !found {
					return fmt.Errorf("no mark with seq %d in %s (%d marks, seq %d..%d)", seq, marks, len(all), all[0].Seq, all[len(all)-1].Seq)
				}
			}
			st, err := store.OpenReadOnly(db)
			if err != nil {
				return err
			}
			defer st.Close()
			got, err := st.Digests(cmd.Context(), nil)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "mark seq %d (tx %d, %s); store %s at seq %d\n",
				m.Seq, m.Tx, m.Time.Format("2006-01-02T15:04:05Z07:00"), db, st.DB.GetLatestSequenceNumber())
			diffs := 0
			for _, r := range loadgen.CompareFamilies(m.Families, got) {
				status := "OK  "
				if !r.Equal {
					status = "DIFF"
					diffs++
				}
				fmt.Fprintf(out, "%s %-8s %s\n", status, r.Name, detail(r))
			}
			if diffs > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "tailer-loadgen: %d column families differ from the mark at seq %d\n", diffs, m.Seq)
				return errReported
			}
			fmt.Fprintf(out, "all %d column families match the mark at seq %d\n", len(m.Families), m.Seq)
			if blobs == "" {
				return nil
			}
			l, err := blobfs.NewLayout(blobs, blobDepth)
			if err != nil {
				return fmt.Errorf("--blob-depth: %w", err)
			}
			if err := loadgen.CompareBlobs(m, l); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "tailer-loadgen: %v\n", err)
				return errReported
			}
			fmt.Fprintf(out, "all %d referenced blobs in %s match the mark at seq %d\n", len(m.Blobs.Names), blobs, m.Seq)
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "store directory to check, opened read-only (required)")
	cmd.Flags().StringVar(&marks, "marks", "", "JSON-lines marks file written by run (required)")
	cmd.Flags().Uint64Var(&seq, "seq", 0, "sequence number of the mark to compare with (default: the last mark)")
	cmd.Flags().StringVar(&blobs, "blobs", "", "also compare this filesystem blob store with the mark's referenced blobs (a run with --blobs)")
	cmd.Flags().IntVar(&blobDepth, "blob-depth", blobfs.DefaultDepth, "directory depth of the --blobs store")
	return cmd
}

func detail(r loadgen.FamilyResult) string {
	switch {
	case !r.InGot:
		return fmt.Sprintf("missing from store (mark: %d keys)", r.WantKeys)
	case !r.InWant:
		return fmt.Sprintf("not in mark (store: %d keys)", r.GotKeys)
	case r.Equal:
		return fmt.Sprintf("%d keys", r.GotKeys)
	default:
		return fmt.Sprintf("keys want %d got %d, digest want %.16s got %.16s", r.WantKeys, r.GotKeys, r.WantDigest, r.GotDigest)
	}
}
