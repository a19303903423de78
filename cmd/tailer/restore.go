package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/dumpsource"
	"github.com/tailer-backup/tailer/internal/progress"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/stalwartfmt"
	"github.com/tailer-backup/tailer/standby"
)

func newRestoreCmd(g *globals) *cobra.Command {
	var (
		opts     restore.Options
		replica  string
		seq      uint64
		when     string
		account  uint32
		change   uint64
		format   string
		out      string
		every    time.Duration
		follow   bool
		interval time.Duration
		listen   string
		blobsTo  string
		depth    int
	)
	cmd := &cobra.Command{
		Use:   "restore --replica URL (--to DIR | --format stalwart --out DIR) [--seq N | --time T | --account A --change-id C | --follow]",
		Short: "Restore a store from a replica, to the newest state or to a sequence number",
		Long: `restore picks the newest full export at or before the target, downloads it
and the segments after it, verifies every checksum before writing anything,
loads the export (SST files ingested per column family), checks the loaded
families against the export's digests, and replays whole WAL batches up to
the target. The result is a RocksDB directory Stalwart opens as is (same
column families, same merge operator).

--seq N gives exactly the state the primary had when its latest sequence
number was N. If N falls inside a batch (one Stalwart transaction), the
restore stops before that batch and says so. --time T gives the state after
the last batch tailer captured at or before T (tailer's clock when it read
the batch). --account A --change-id C gives the state right after the batch
that wrote Stalwart's change C of account A ('tailer changes' lists them).
Without any: the newest state the replica holds. --to must not exist or be
empty.

Every object is verified before anything is written. A missing, corrupt,
truncated or newer-format segment on the way to the target stops the
restore, naming it; --allow-partial restores instead up to the last good
batch before it and prints where it stopped and why. A damaged export is
replaced by an older export of the same generation (same state, longer
replay), and the output says so. A restore that fails removes what it
wrote.

--format stalwart --out DIR writes the same state as Stalwart's own export
files (what 'stalwart --import' reads) instead of a RocksDB directory: to
move a past state to another DataStore, or to import it into a fresh
Stalwart. It restores into a hidden temporary directory beside --out (room
for one restored store is needed while it runs), writes the files, and
removes the temporary store. --out must not exist or be empty.

--follow keeps --to as a warm standby: it restores the newest state once,
then every --interval applies the segments that appeared in the replica
since, whole batches only (compacted segments included), so the standby
stays a few seconds behind the primary. When tailer starts a new
generation (a WAL gap, a replaced primary) the follower says so and
rebuilds the standby from that generation's export beside --to, then
swaps it in with renames: --to never holds a half-built store. Progress is
kept in DIR.tailer-follow.json beside the standby (nothing is added to
the store); after a crash, kill -9 included, a restart continues exactly
where the standby's own RocksDB recovered, without re-applying or skipping
a batch. It refuses a directory another process has open (Stalwart) or one
written since the follower stopped. Room for a second copy of the store
beside --to is needed while a rebuild runs.

--blobs-to DIR also restores Stalwart's filesystem blob store (the mail
itself, when Stalwart keeps blobs on disk and 'tailer run' ships them): once
the store is restored, every blob its blob links (family k) reference at
the restored point is fetched from the replica's blobs/, checked against
its hash and written into DIR with Stalwart's own paths (--blob-depth as
in Stalwart's configuration, default 2). Blobs purged from the server since
are restored from the bucket too. DIR must not exist or be empty. A blob
the replica lacks (or holds damaged) fails the command, naming it and its
account; the store and the blobs found are kept. With --allow-partial it
is reported as PARTIAL and the command succeeds. Temporary links (uploads
not yet turned into a message) are judged at the restored point's capture
time: a blob held by one then is restored. With --follow, DIR is kept
current: the blobs each applied batch commits are fetched after it, the
whole set after a rebuild; blobs no longer referenced stay (Stalwart's
purge removes them after a promotion).

Promote the standby (failover):
  1. stop the follower with SIGTERM (or Ctrl-C): it applies no partial
     batch, flushes, closes the store and prints the sequence it stopped at;
  2. point Stalwart's RocksDb.path at --to (or move the directory there)
     and start Stalwart.
After a promotion never follow into that directory again (it refuses):
follow into a new directory to build a new standby.`,
		Example: `  # newest state
  tailer restore --replica s3://backups/mail --to /var/lib/stalwart.restored

  # the state at sequence 1234567 ('tailer list' shows the ranges)
  tailer restore --replica file:///srv/backup/mail --to /tmp/mail-at-1234567 --seq 1234567

  # just before 10:42 UTC, when the mailbox was wiped
  tailer restore --replica s3://backups/mail --to /tmp/mail-1041 --time 2026-11-23T10:41:59Z

  # right after change 5120 of account 17
  tailer restore --replica s3://backups/mail --to /tmp/mail-17-5120 --account 17 --change-id 5120

  # Stalwart's import files for the state at 10:41:59 UTC
  tailer restore --replica s3://backups/mail --time 2026-11-23T10:41:59Z --format stalwart --out /srv/mail-1041

  # the store and its filesystem blob store (Stalwart's default depth 2)
  tailer restore --replica s3://backups/mail --to /srv/restored/db --blobs-to /srv/restored/blobs

  # a warm standby, checked for new segments every second; SIGTERM to promote
  tailer restore --follow --replica s3://backups/mail --to /var/lib/stalwart.standby --interval 1s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, cmd.Flags().Changed, []string{"to", "digests", "blobs-to", "blob-depth"}, []string{"out", "progress"}); err != nil {
				return err
			}
			if cmd.Flags().Changed("blob-depth") && blobsTo == "" {
				return fmt.Errorf("--blob-depth goes with --blobs-to DIR")
			}
			if blobsTo != "" { // --blob-depth's range is checked before RunE (limits.go)
				opts.Blobs = &restore.BlobOptions{Dir: blobsTo, Depth: depth}
			}
			if follow {
				return runFollow(cmd, g, replica, opts, format, interval, listen)
			}
			if listen != "" {
				return fmt.Errorf("--listen goes with --follow: only a standby serves metrics")
			}
			if format == formatStalwart {
				if out == "" {
					return fmt.Errorf("--format stalwart needs --out DIR: a new or empty directory for Stalwart's import files")
				}
				if err := stalwartfmt.CheckOut(out); err != nil {
					return err
				}
			}
			log, r, err := g.setup(cmd, replica)
			if err != nil {
				return err
			}
			opts.Replica = r
			if cmd.Flags().Changed("seq") {
				opts.Target.Seq, opts.Target.HasSeq = seq, true
			}
			if when != "" {
				t, err := time.Parse(time.RFC3339Nano, when)
				if err != nil {
					return fmt.Errorf("--time %q: use RFC 3339, e.g. 2026-11-23T10:42:00Z or 2026-11-23T11:42:00+01:00", when)
				}
				opts.Target.Time, opts.Target.HasTime = t, true
			}
			switch a, c := cmd.Flags().Changed("account"), cmd.Flags().Changed("change-id"); {
			case a && c:
				opts.Target.Account, opts.Target.ChangeID, opts.Target.HasChange = account, change, true
			case a || c:
				return fmt.Errorf("--account and --change-id go together: the change id is per account ('tailer changes --account A' lists them)")
			}
			opts.Log = log
			var (
				res restore.Result
				sum stalwartfmt.Summary
			)
			if format == formatStalwart {
				res, sum, err = dumpsource.FromReplica(cmd.Context(), opts, out, stalwartOptions(log, every))
			} else {
				ph := newPhases(log)
				opts.Progress = ph.update
				res, err = restore.Run(cmd.Context(), opts)
				ph.finish(err != nil)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case res.Partial:
				// First and loud: the result is a true past state of the
				// source, but not the one asked for.
				where := opts.To
				if format == formatStalwart {
					where = out
				}
				fmt.Fprintf(w, "PARTIAL restore of %s to %s: stopped at seq %d, short of %d\n", replica, where, res.Seq, res.Target)
				fmt.Fprintf(w, "  why: %s\n", res.Note)
			case format == formatStalwart:
				fmt.Fprintf(w, "restored %s at seq %d (through a temporary store)\n", replica, res.Seq)
			default:
				fmt.Fprintf(w, "restored %s to %s at seq %d\n", replica, opts.To, res.Seq)
			}
			if res.Why != "" {
				fmt.Fprintf(w, "  target: %s\n", res.Why)
			}
			fmt.Fprintf(w, "  generation %s, export at seq %d (%d keys), %d segments, %d batches replayed\n",
				res.Generation, res.ExportSeq, res.Keys, res.Segments, res.Batches)
			fmt.Fprintf(w, "  downloaded %s in %s, loaded in %s, replayed in %s, total %s\n",
				progress.HumanBytes(res.Downloaded), roundDur(res.DownloadDur), roundDur(res.LoadDur), roundDur(res.ReplayDur), roundDur(res.Took))
			for _, f := range res.Families {
				fmt.Fprintf(w, "  %-8s %10d %s\n", f.Name, f.Keys, f.Digest)
			}
			if res.Note != "" && !res.Partial {
				fmt.Fprintf(w, "  note: %s\n", res.Note)
			}
			if format == formatStalwart {
				printStalwartSummary(w, sum)
			}
			if res.Blobs != nil {
				return printBlobRestore(w, *res.Blobs, opts.AllowPartial)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&replica, "replica", "", "replica to restore from: s3://BUCKET/PREFIX or file:///DIR, required")
	f.StringVar(&opts.To, "to", "", "directory to create the restored store in (must not exist or be empty), required with --format tailer")
	f.Uint64Var(&seq, "seq", 0, "restore the state at this sequence number (default: newest)")
	f.StringVar(&when, "time", "", "restore the state after the last batch captured at or before this RFC 3339 time")
	f.Uint32Var(&account, "account", 0, "with --change-id: the Stalwart account id")
	f.Uint64Var(&change, "change-id", 0, "with --account: restore the state right after the batch that wrote this change id of the account")
	f.StringVar(&opts.Target.Generation, "generation", "", "restore from this generation only (when sequence numbers repeat after the primary was restored)")
	f.BoolVar(&opts.Digests, "digests", false, "print every family's key count and digest of the restored store (one more full read; compare with 'tailer digest')")
	f.BoolVar(&opts.VerifyLoad, "verify-load", false, "after loading the export, re-read the restored store and compare every family with the export's digests (a second full read; the export's stream is always checked while loading)")
	f.StringVar(&opts.Work, "work", "", "where restore makes its own temporary directory for downloads (default: beside --to); only that one is removed")
	f.BoolVar(&opts.AllowPartial, "allow-partial", false, "when a segment on the way to the target is missing or damaged, restore up to the last good batch before it (and say so) instead of failing")
	f.StringVar(&format, "format", formatTailer, "tailer: a RocksDB directory in --to; stalwart: Stalwart's import files in --out")
	f.StringVar(&out, "out", "", "with --format stalwart: directory for the files (must not exist or be empty)")
	f.DurationVar(&every, "progress", 5*time.Second, "with --format stalwart: how often to log progress while writing the files")
	f.BoolVar(&follow, "follow", false, "keep --to as a warm standby: restore once, then apply new segments as they appear until SIGTERM")
	f.DurationVar(&interval, "interval", time.Second, "with --follow: how often to look for new segments")
	f.StringVar(&blobsTo, "blobs-to", "", "also restore Stalwart's filesystem blob store (the blobs the restored point references) into this new or empty directory; with --follow, keep it current")
	f.IntVar(&depth, "blob-depth", blobfs.DefaultDepth, "with --blobs-to: the depth of the restored Stalwart's blob store (its configuration's depth)")
	limit(f, "blob-depth", nonNegative("2, Stalwart's default; more than 5 counts as 5"))
	f.StringVar(&listen, "listen", "", "with --follow: address for /metrics (tailer_follow_*) and /healthz, e.g. 127.0.0.1:9465 (default: none)")
	// Durations, sizes and counts declare their valid range (limits.go);
	// a new one needs a limit call here and a row in TestLimits.
	limit(f, "progress", positive("5s"))
	limit(f, "interval", positive("1s"))
	return cmd
}

// runFollow runs restore --follow until SIGTERM/SIGINT (cmd's context).
func runFollow(cmd *cobra.Command, g *globals, replica string, opts restore.Options, format string, interval time.Duration, listen string) error {
	if format != formatTailer {
		return fmt.Errorf("--format %s does not go with --follow: a standby is a RocksDB directory (--to)", format)
	}
	for _, name := range []string{"seq", "time", "account", "change-id", "generation", "allow-partial", "digests"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s does not go with --follow: a standby follows the newest state of the newest generation into --to", name)
		}
	}
	if opts.To == "" {
		return fmt.Errorf("--follow needs --to DIR: the standby directory (new or empty the first time, the standby afterwards)")
	}
	log, r, err := g.setup(cmd, replica)
	if err != nil {
		return err
	}
	fo := standby.FollowOptions{Replica: r, To: opts.To, Interval: interval, Work: opts.Work, Log: log, Blobs: opts.Blobs}
	if listen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		srv, err := serveHTTP(listen, reg, nil, log)
		if err != nil {
			return err
		}
		defer srv.Shutdown(context.Background())
		fo.Registry = reg
	}
	st, err := standby.Follow(cmd.Context(), fo)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "standby %s stopped at seq %d of generation %s (%d batches applied, %d %s from an export)\n",
		opts.To, st.Seq, st.Generation, st.Batches, st.Rebuilds, plural(st.Rebuilds, "build", "builds"))
	fmt.Fprintf(w, "  consistent at a batch boundary, flushed and closed: to promote it, point Stalwart's RocksDb.path at %s and start Stalwart\n", opts.To)
	if opts.Blobs != nil {
		fmt.Fprintf(w, "  blobs in %s: %d written since start", opts.Blobs.Dir, st.BlobsWritten)
		if st.BlobsMissing > 0 {
			fmt.Fprintf(w, ", %d referenced blobs MISSING from the replica (named in the log)", st.BlobsMissing)
		}
		fmt.Fprintf(w, "; point Stalwart's blob store (depth %d) at it\n", opts.Blobs.Depth)
	}
	return nil
}

// maxListed bounds the missing blobs printed one per line; the log names
// every one.
const maxListed = 20

// printBlobRestore prints what the blob restore did and fails when
// required blobs are missing, unless allowPartial.
func printBlobRestore(w io.Writer, b restore.BlobResult, allowPartial bool) error {
	rep := b.Report
	miss := rep.Missing
	if len(miss) > 0 && allowPartial {
		fmt.Fprintf(w, "PARTIAL blob restore into %s: %d blobs the restored store references are missing\n", b.Dir, len(miss))
	}
	fmt.Fprintf(w, "  blobs: %d referenced, %d written (%s), %d already there, %d unneeded and absent, %d missing, into %s in %s\n",
		b.Referenced, rep.Written, progress.HumanBytes(rep.Bytes), rep.Present, rep.Optional, len(miss), b.Dir, roundDur(b.Took))
	for i, m := range miss {
		if i == maxListed {
			fmt.Fprintf(w, "  ... and %d more (the log names each)\n", len(miss)-maxListed)
			break
		}
		fmt.Fprintf(w, "  MISSING blob %s of %s: %s\n", m.Hash.Name(), m.Owner, m.Why)
	}
	if len(miss) == 0 || allowPartial {
		return nil
	}
	return fmt.Errorf("%d blobs the restored store references are not in the replica (listed above): the store and the %d blobs restored are kept, but Stalwart cannot read those messages; "+
		"check that 'tailer run' ships the blob store and restore another point, or accept the loss (--allow-partial reports it as PARTIAL instead of failing)", len(miss), rep.Written+rep.Present)
}
