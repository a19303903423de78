package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/internal/report"
	"github.com/tailer-backup/tailer/secondary"
	"github.com/tailer-backup/tailer/uploader"
)

// replicaStatus is one replica as `status` reports it.
type replicaStatus struct {
	report.Head
	Error string    `json:"error,omitempty"`
	Now   time.Time `json:"now"`
	// LagSeconds is how much of the primary's recent history the replica
	// may miss: now minus the capture time of its newest restorable batch,
	// or 0 when --db shows the replica holds the primary's latest sequence.
	LagSeconds float64 `json:"lag_seconds"`
	PrimarySeq *uint64 `json:"primary_seq,omitempty"`
	SeqBehind  *uint64 `json:"seq_behind,omitempty"`
	// Behind is true when LagSeconds exceeds --max-lag.
	Behind bool   `json:"behind"`
	Note   string `json:"note,omitempty"`
	// Spool is what the replica's directory in --spool holds that the
	// replica has not confirmed yet (with --spool only).
	Spool *report.SpoolStatus `json:"spool,omitempty"`
}

// exitError makes main exit with code instead of 1, after printing err
// (if any): status exits 2 for "reachable but behind", so monitoring can
// tell a replica that lags from a command that failed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newStatusCmd(g *globals) *cobra.Command {
	var (
		replicas []string
		asJSON   bool
		db       string
		scratch  string
		spool    string
		maxLag   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status --replica URL [--replica URL ...] [--db DIR] [--spool DIR] [--max-lag 1m] [--json]",
		Short: "How far behind the primary each replica is: newest sequence, capture time, lag",
		Long: `status reads, for each replica, the newest sequence number a restore from it
reaches and the time tailer captured that batch (from the newest segment's
trailer, read in place), and prints how long ago that was: the most a
restore or a standby built from it would miss. It also shows the 'tailer
run' holding the replica's lease and when it last renewed it.

The capture time alone cannot tell a stalled tailer from an idle primary
(nothing written, nothing shipped, the newest batch just gets older). With
--db, status also opens the live store as a RocksDB secondary (its files in
a temporary directory under --scratch, removed afterwards; no lock, nothing
written to the store) and reports how many sequence numbers the replica is
behind the primary's latest; a replica holding the latest one has lag 0.

--max-lag D makes status exit 2, with one line per replica behind, when a
replica's lag exceeds D: for scripts and monitoring (exit 1 means status
itself failed, e.g. a replica could not be read). Check it before a
failover: a standby ('restore --follow') is at most that far behind the
replica it follows.

--spool DIR (tailer run's spool; default SCRATCH/spool when --scratch names
run's scratch directory) also shows what each replica's spool holds that
its bucket has not confirmed, and lists, with a warning, spool directories
no given replica owns: their objects are uploaded only by a 'tailer run'
given that replica (or the directory is removed by hand).`,
		Example: `  tailer status --replica s3://backups/mail
  tailer status --replica s3://backups/mail --replica file:///mnt/offsite/mail --max-lag 1m
  tailer status --replica s3://backups/mail --db /var/lib/stalwart --json
  tailer status --replica s3://backups/mail --spool /var/lib/stalwart.tailer/spool`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(replicas) == 0 {
				replicas = []string{""} // setup names the missing flag
			}
			if scratch != "" && db == "" {
				return errors.New("--scratch goes with --db: it holds the secondary instance that reads the primary's latest sequence")
			}
			if maxLag < 0 {
				return fmt.Errorf("--max-lag %s: give a positive duration (or 0 for no check)", maxLag)
			}
			var primary *uint64
			var primaryID string
			if db != "" {
				seq, id, err := primaryLatest(db, scratch)
				if err != nil {
					return err
				}
				primary, primaryID = &seq, id
			}
			var out []replicaStatus
			var opened []uploader.Replica
			failed := 0
			var log *slog.Logger
			for _, url := range replicas {
				l, r, err := g.setup(cmd, url)
				if err == nil {
					err = checkFileReplica(r) // status only reads: a missing directory is a wrong URL
				}
				if err != nil {
					return err
				}
				log = l
				opened = append(opened, r)
				rs := replicaStatus{Now: time.Now().UTC()}
				rs.Head, err = report.ReadHead(cmd.Context(), r)
				if err != nil {
					rs.Replica, rs.Error = r.String(), err.Error()
					failed++
					out = append(out, rs)
					continue
				}
				rs.LagSeconds = max(0, rs.Now.Sub(rs.Captured).Seconds())
				switch {
				case primary == nil:
				case primaryID != "" && rs.DBIdentity != "" && primaryID != rs.DBIdentity:
					rs.Note = fmt.Sprintf("the replica's newest generation comes from another store (identity %s; %s is %s): the primary was replaced and tailer has not exported it yet", rs.DBIdentity, db, primaryID)
				default:
					p := *primary
					behind := uint64(0)
					if p > rs.Seq {
						behind = p - rs.Seq
					}
					rs.PrimarySeq, rs.SeqBehind = &p, &behind
					if behind == 0 {
						rs.LagSeconds = 0
					}
				}
				rs.Behind = maxLag > 0 && rs.LagSeconds > maxLag.Seconds()
				out = append(out, rs)
			}
			orphans, err := readSpools(spoolDir(spool, scratch), opened, out, log)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				for _, rs := range out {
					printStatus(w, rs, maxLag, primary != nil)
				}
				printOrphans(w, orphans)
			}
			var lines []string
			for _, rs := range out {
				switch {
				case rs.Error != "":
					lines = append(lines, fmt.Sprintf("%s: %s", rs.Replica, rs.Error))
				case rs.Behind:
					lines = append(lines, fmt.Sprintf("%s is %s behind (more than --max-lag %s)", rs.Replica, secs(rs.LagSeconds), maxLag))
				}
			}
			switch {
			case failed > 0:
				return errors.New(strings.Join(lines, "; "))
			case len(lines) > 0:
				return &exitError{code: 2, err: errors.New(strings.Join(lines, "; "))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&replicas, "replica", nil, "replica to check: s3://BUCKET/PREFIX or file:///DIR; repeat for several, required")
	f.BoolVar(&asJSON, "json", false, "print the status as JSON")
	f.StringVar(&db, "db", "", "the primary's store directory (Stalwart's RocksDb.path): also report how many sequence numbers each replica is behind it")
	f.StringVar(&scratch, "scratch", "", "with --db: where the temporary secondary instance keeps its files (default: the system's temporary directory); if it is run's --scratch, its spool is read as by --spool")
	f.StringVar(&spool, "spool", "", "tailer run's spool directory: also show what each replica's spool holds, and spool directories no given replica owns")
	f.DurationVar(&maxLag, "max-lag", 0, "exit 2 when a replica's lag exceeds this (0: no check)")
	// Durations, sizes and counts declare their valid range (limits.go);
	// a new one needs a limit call here and a row in TestLimits.
	limit(f, "max-lag", nonNegative("5m; 0 is no check"))
	return cmd
}

// primaryLatest opens the live store as a secondary in a temporary
// directory under scratch, catches up, and returns its latest sequence
// number and IDENTITY.
func primaryLatest(db, scratch string) (uint64, string, error) {
	tmp, err := os.MkdirTemp(scratch, "tailer-status-")
	if err != nil {
		return 0, "", fmt.Errorf("temporary directory for the secondary instance: %w", err)
	}
	defer os.RemoveAll(tmp)
	s, err := secondary.Open(db, tmp)
	if err != nil {
		return 0, "", err
	}
	defer s.Close()
	if err := s.CatchUp(); err != nil {
		return 0, "", fmt.Errorf("read the primary's latest sequence: %w", err)
	}
	id, err := s.Identity()
	if err != nil {
		id = "" // only used to notice a replaced store
	}
	return s.LatestSeq(), id, nil
}

// spoolDir is the spool status reads: --spool, else SCRATCH/spool when
// --scratch is run's scratch directory (it has one), else none.
func spoolDir(spool, scratch string) string {
	if spool != "" || scratch == "" {
		return spool
	}
	if st, err := os.Stat(filepath.Join(scratch, "spool")); err == nil && st.IsDir() {
		return filepath.Join(scratch, "spool")
	}
	return ""
}

// readSpools fills each status's Spool from root and returns the spool
// directories none of the replicas owns, each also logged as a warning
// (so --json output, a list of replicas, still shows them on stderr).
func readSpools(root string, rs []uploader.Replica, out []replicaStatus, log *slog.Logger) ([]report.SpoolStatus, error) {
	if root == "" {
		return nil, nil
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--spool %s: not a directory (give tailer run's --spool, default SCRATCH/spool)", root)
	}
	own, orphans, err := report.Spools(root, rs)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Spool = own[i]; own[i] == nil {
			out[i].Spool = &report.SpoolStatus{}
		}
	}
	for _, o := range orphans {
		if o.Objects > 0 {
			log.Warn("orphaned spool: it holds objects for a replica not given here; they are uploaded only by a 'tailer run' with that --replica (or remove the directory if they are not needed)",
				"dir", o.Dir, "replica", ownerName(o), "objects", o.Objects, "bytes", o.Bytes)
		}
	}
	return orphans, nil
}

func ownerName(s report.SpoolStatus) string {
	if s.Replica == "" {
		return "unknown (written by an older tailer)"
	}
	return s.Replica
}

func printOrphans(w io.Writer, orphans []report.SpoolStatus) {
	if len(orphans) == 0 {
		return
	}
	fmt.Fprintln(w, "spool directories no given replica owns (their objects are not uploaded: run tailer once with that --replica, or remove the directory):")
	for _, o := range orphans {
		fmt.Fprintf(w, "  %s\n    replica  %s\n    pending  %d objects, %d bytes\n", o.Dir, ownerName(o), o.Objects, o.Bytes)
	}
}

func printStatus(w io.Writer, rs replicaStatus, maxLag time.Duration, withDB bool) {
	fmt.Fprintln(w, rs.Replica)
	if rs.Error != "" {
		fmt.Fprintf(w, "  error       %s\n", rs.Error)
		return
	}
	fmt.Fprintf(w, "  generation  %s\n", rs.Generation)
	if rs.Pending != "" {
		fmt.Fprintf(w, "              (newer generation %s has no export yet)\n", rs.Pending)
	}
	fmt.Fprintf(w, "  newest      seq %d, captured %s (%s ago)\n", rs.Seq, rs.Captured.Format("2006-01-02T15:04:05.000Z07:00"), secs(rs.Now.Sub(rs.Captured).Seconds()))
	if rs.LastSeq > rs.Seq {
		fmt.Fprintf(w, "              batches up to %d lie beyond a hole in the chain ('tailer verify' names it)\n", rs.LastSeq)
	}
	if rs.SeqBehind != nil {
		fmt.Fprintf(w, "  primary     seq %d: %d behind\n", *rs.PrimarySeq, *rs.SeqBehind)
	}
	lag := secs(rs.LagSeconds)
	switch {
	case rs.Behind:
		lag += fmt.Sprintf(", BEHIND (max %s)", maxLag)
	case maxLag > 0:
		lag += fmt.Sprintf(", ok (max %s)", maxLag)
	}
	fmt.Fprintf(w, "  lag         %s\n", lag)
	switch {
	case rs.SeqBehind != nil && *rs.SeqBehind == 0:
		fmt.Fprintf(w, "              the replica holds the primary's latest state\n")
	case !withDB:
		fmt.Fprintf(w, "              (an idle primary looks behind too: --db tells)\n")
	}
	if rs.Note != "" {
		fmt.Fprintf(w, "  note        %s\n", rs.Note)
	}
	if sp := rs.Spool; sp != nil {
		fmt.Fprintf(w, "  spool       %d objects, %d bytes not yet in the replica\n", sp.Objects, sp.Bytes)
	}
	if l := rs.Writer; l != nil {
		live := "expired " + secs(rs.Now.Sub(l.Expires).Seconds()) + " ago: no tailer is shipping"
		if l.Expires.After(rs.Now) {
			live = "renewed " + secs(rs.Now.Sub(l.Renewed).Seconds()) + " ago"
		}
		fmt.Fprintf(w, "  writer      tailer run on %s (pid %d), lease %s\n", l.Host, l.PID, live)
	} else {
		fmt.Fprintf(w, "  writer      none (no lease: no tailer run has shipped here yet)\n")
	}
}

func secs(s float64) string {
	return fmt.Sprintf("%.1fs", max(0, s))
}
