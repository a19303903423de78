package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tailer-backup/tailer/internal/progress"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/report"
	"github.com/tailer-backup/tailer/uploader"
)

// listedGeneration is one generation as `list --json` prints it.
type listedGeneration struct {
	ID         string           `json:"id"`
	Meta       *layout.Meta     `json:"meta,omitempty"`
	MetaError  string           `json:"meta_error,omitempty"`
	FirstSeq   uint64           `json:"first_seq"`
	LastSeq    uint64           `json:"last_seq"`
	Restorable bool             `json:"restorable"`
	NewestSeq  uint64           `json:"newest_restorable_seq"`
	Bytes      int64            `json:"bytes"`
	Oldest     time.Time        `json:"oldest_object"`
	Newest     time.Time        `json:"newest_object"`
	Exports    []layout.Export  `json:"exports"`
	Segments   []layout.Segment `json:"segments"`
}

func newListCmd(g *globals) *cobra.Command {
	var replica string
	var asJSON, accounts bool
	cmd := &cobra.Command{
		Use:   "list --replica URL [--json]",
		Short: "Show the generations, exports and segments a replica holds",
		Long: `list prints each generation (one unbroken chain: a base export and the
segments after it) with why it started, its sequence range, the newest
sequence number a restore can reach, its exports and its size, and the
blob objects of a filesystem blob store (count and size), if any. --json
prints everything, every object included, for scripts. --accounts shows
each account's newest Stalwart change id the replica holds.`,
		Example: `  tailer list --replica s3://backups/mail
  tailer list --replica file:///srv/backup/mail --json | jq '.[].newest_restorable_seq'
  tailer list --replica s3://backups/mail --accounts`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, r, err := g.setup(cmd, replica)
			if err != nil {
				return err
			}
			if accounts {
				return listAccounts(cmd, r, asJSON)
			}
			gens, unknown, err := catalog.List(cmd.Context(), r, nil)
			if err != nil {
				return err
			}
			var out []listedGeneration
			for _, gen := range gens {
				lg := listedGeneration{ID: gen.ID, Exports: gen.Exports, Segments: gen.Segments, LastSeq: gen.LastSeq()}
				if gen.MetaKey != "" {
					m, err := catalog.ReadMeta(cmd.Context(), r, gen.MetaKey)
					if keyProblem(err) {
						return err // not this object's fault: every object will fail the same way
					}
					if err != nil {
						lg.MetaError = err.Error()
					} else {
						lg.Meta = &m
					}
				}
				lg.NewestSeq, lg.Restorable = gen.NewestRestorable()
				if len(gen.Exports) > 0 {
					lg.FirstSeq = gen.Exports[0].Seq
				}
				for _, o := range objects(gen) {
					lg.Bytes += o.Size
					if lg.Oldest.IsZero() || o.Modified.Before(lg.Oldest) {
						lg.Oldest = o.Modified
					}
					if o.Modified.After(lg.Newest) {
						lg.Newest = o.Modified
					}
				}
				out = append(out, lg)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if out == nil {
					out = []listedGeneration{}
				}
				return enc.Encode(out)
			}
			printList(cmd, r.String(), out)
			held, err := blobship.Listed(cmd.Context(), r)
			if err != nil {
				return err
			}
			if len(held) > 0 {
				var bytes int64
				for _, n := range held {
					bytes += n
				}
				fmt.Fprintf(cmd.OutOrStdout(), "\nblobs: %d objects, %s (a filesystem blob store's files, shared by every generation and point)\n", len(held), progress.HumanBytes(bytes))
			}
			if len(unknown) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "\n%d objects under the prefix were not written by tailer (first: %s)\n", len(unknown), unknown[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&replica, "replica", "", "replica to list: s3://BUCKET/PREFIX or file:///DIR, required")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&accounts, "accounts", false, "show each account's newest Stalwart change id in the newest generation instead")
	return cmd
}

func objects(g layout.Generation) []layout.Object {
	var out []layout.Object
	for _, e := range g.Exports {
		out = append(out, e.Object)
	}
	for _, s := range g.Segments {
		out = append(out, s.Object)
	}
	return out
}

func printList(cmd *cobra.Command, url string, gens []listedGeneration) {
	w := cmd.OutOrStdout()
	if len(gens) == 0 {
		fmt.Fprintf(w, "%s holds no generation yet\n", url)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GENERATION\tREASON\tSEQ RANGE\tRESTORABLE TO\tEXPORTS\tSEGMENTS\tSIZE\tTIME RANGE (UTC)")
	for _, g := range gens {
		reason := "?"
		if g.Meta != nil {
			reason = g.Meta.Reason
		} else if g.MetaError != "" {
			reason = "unreadable generation.json"
		}
		restorable := "-"
		if g.Restorable {
			restorable = fmt.Sprint(g.NewestSeq)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d..%d\t%s\t%d\t%d\t%s\t%s .. %s\n", g.ID, clip(reason, 40), g.FirstSeq, g.LastSeq,
			restorable, len(g.Exports), len(g.Segments), progress.HumanBytes(g.Bytes),
			g.Oldest.UTC().Format("2006-01-02 15:04:05"), g.Newest.UTC().Format("2006-01-02 15:04:05"))
	}
	tw.Flush()
	for _, g := range gens {
		for _, e := range g.Exports {
			fmt.Fprintf(w, "  %s export at seq %d, %s, %s\n", g.ID, e.Seq, progress.HumanBytes(e.Size), e.Modified.UTC().Format(time.RFC3339))
		}
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// listAccounts prints each account's newest change id.
func listAccounts(cmd *cobra.Command, r uploader.Replica, asJSON bool) error {
	gen, m, err := report.AccountChanges(cmd.Context(), r)
	if err != nil {
		return err
	}
	ids := make([]uint32, 0, len(m))
	for a := range m {
		ids = append(ids, a)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := cmd.OutOrStdout()
	if asJSON {
		type acct struct {
			Account  uint32 `json:"account"`
			ChangeID uint64 `json:"newest_change_id"`
		}
		list := make([]acct, 0, len(ids))
		for _, a := range ids {
			list = append(list, acct{a, m[a]})
		}
		return json.NewEncoder(out).Encode(struct {
			Generation string `json:"generation"`
			Accounts   []acct `json:"accounts"`
		}{gen, list})
	}
	fmt.Fprintf(out, "generation %s\n", gen)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tNEWEST CHANGE ID")
	for _, a := range ids {
		fmt.Fprintf(tw, "%d\t%d\n", a, m[a])
	}
	return tw.Flush()
}

// keyProblem reports whether err comes from the encryption key (missing,
// wrong, given for a plaintext replica, or the replica's keys.json is
// unusable) rather than from one object, so
// a command that lists damaged objects and goes on stops instead.
func keyProblem(err error) bool {
	return errors.Is(err, uploader.ErrEncrypted) || errors.Is(err, uploader.ErrWrongKey) || errors.Is(err, uploader.ErrNotEncrypted) || errors.Is(err, uploader.ErrKeysFile)
}
