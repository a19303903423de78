package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/changelog"
	"github.com/tailer-backup/tailer/internal/report"
)

func newChangesCmd(g *globals) *cobra.Command {
	var (
		replica, collection, since, until string
		account                           uint32
		asJSON                            bool
	)
	cmd := &cobra.Command{
		Use:   "changes --replica URL [--account A] [--collection NAME] [--since T] [--until T] [--json]",
		Short: "List Stalwart's changelog as recorded in the replica, to find a moment to restore to",
		Long: `changes prints one line per Stalwart change the replica holds: when tailer
captured it, the sequence number of its batch, the account, the collection
(email, thread, calendar, address-book, file-node, identity, ...), the
account's change id, and the numbers of inserts, updates and deletes. Use it
to find the point to restore to without knowing sequence numbers, then
'tailer restore --account A --change-id C' or '--time T'.

Segments ruled out by their labels (account, collection, capture times) are
not downloaded. --json prints one JSON object per line.`,
		Example: `  # what happened to account 17's mail after 10:30?
  tailer changes --replica s3://backups/mail --account 17 --collection email --since 2026-11-23T10:30:00Z

  # then restore to just before the wipe
  tailer restore --replica s3://backups/mail --to /tmp/mail --account 17 --change-id 5119`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, r, err := g.setup(cmd, replica)
			if err != nil {
				return err
			}
			var f report.ChangeFilter
			if cmd.Flags().Changed("account") {
				f.Account = &account
			}
			if collection != "" {
				c, err := changelog.ParseCollection(collection)
				if err != nil {
					return fmt.Errorf("--collection: %w", err)
				}
				v := uint32(c)
				f.Collection = &v
			}
			for _, b := range []struct {
				flag, val string
				dst       *int64
			}{{"--since", since, &f.SinceMs}, {"--until", until, &f.UntilMs}} {
				if b.val == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339Nano, b.val)
				if err != nil {
					return fmt.Errorf("%s %q: use RFC 3339, e.g. 2026-11-23T10:42:00Z", b.flag, b.val)
				}
				*b.dst = t.UnixMilli()
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			n := 0
			err = report.Changes(cmd.Context(), r, f, func(c report.Change) error {
				n++
				if asJSON {
					return enc.Encode(changeJSON{
						Time: time.UnixMilli(c.CaptureUnixMs).UTC(), Generation: c.Generation,
						Seq: c.Seq, LastSeq: c.LastSeq, Account: c.Account, Collection: c.Collection.String(),
						ChangeID: c.ChangeID, Inserts: c.Inserts, Updates: c.Updates, Deletes: c.Deletes, Opaque: c.Opaque,
					})
				}
				_, err := fmt.Fprintf(out, "%s  seq %-10d account %-6d %-14s change %-8d +%d ~%d -%d\n",
					time.UnixMilli(c.CaptureUnixMs).UTC().Format("2006-01-02T15:04:05.000Z"), c.LastSeq,
					c.Account, c.Collection, c.ChangeID, c.Inserts, c.Updates, c.Deletes)
				return err
			})
			if err != nil {
				return err
			}
			if n == 0 && !asJSON {
				fmt.Fprintln(cmd.ErrOrStderr(), "no change matches")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&replica, "replica", "", "replica to read: s3://BUCKET/PREFIX or file:///DIR, required")
	f.Uint32Var(&account, "account", 0, "only this Stalwart account id")
	f.StringVar(&collection, "collection", "", "only this collection: email, thread, calendar, address-book, file-node, identity, email-submission, sieve-script, ... or a number")
	f.StringVar(&since, "since", "", "only changes captured at or after this RFC 3339 time")
	f.StringVar(&until, "until", "", "only changes captured at or before this RFC 3339 time")
	f.BoolVar(&asJSON, "json", false, "print JSON lines")
	return cmd
}

// changeJSON is one line of `changes --json`.
type changeJSON struct {
	Time       time.Time `json:"time"`
	Generation string    `json:"generation"`
	Seq        uint64    `json:"seq"`      // first sequence number of the batch
	LastSeq    uint64    `json:"last_seq"` // restore --seq last_seq gives the state right after the change
	Account    uint32    `json:"account"`
	Collection string    `json:"collection"`
	ChangeID   uint64    `json:"change_id"`
	Inserts    int       `json:"inserts"`
	Updates    int       `json:"updates"`
	Deletes    int       `json:"deletes"`
	Opaque     bool      `json:"opaque,omitempty"` // a value tailer does not decode (share notification, unknown collection)
}
