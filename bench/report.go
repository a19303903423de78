package bench

import (
	"encoding/json"
	"fmt"
	"github.com/tailer-backup/tailer/internal/progress"
	"io"
	"strings"
	"text/tabwriter"
)

// Goal is one of issue 8's targets and whether this run met it.
type Goal struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// flatRSS is how much tailer's peak RSS may grow when the store grows 4×
// and still count as "flat": a fixed cost (buffers, zstd windows, RocksDB
// caches) is allowed, a share of the store is not.
const flatRSS = 1.25

func goals(r *Report) []Goal {
	var gs []Goal
	add := func(name, target string, measured string, met bool) {
		gs = append(gs, Goal{Name: name, Target: target, Measured: measured, Met: met})
	}
	if t := r.Tailing; t != nil {
		for _, l := range t.Lag {
			limit := 2.0
			if l.Rate > 0 {
				limit = 1.0
			}
			add(fmt.Sprintf("lag p99 at %s", phaseName(l)), fmt.Sprintf("≤ %.0f s", limit), fmt.Sprintf("%.3f s", l.P99), l.P99 <= limit && l.Unmatched == 0)
		}
		for _, c := range t.Costs {
			if c.Phase == "idle" {
				add("PUTs while idle", "0", fmt.Sprintf("%d in %.0f s (%s)", c.Counts[opPUT], c.Seconds, putKinds(c.Counts)), c.Counts[opPUT] == 0)
			}
		}
	}
	if o := r.Overhead; o != nil {
		add("throughput with ÷ without tailer", "≥ 0.97", fmt.Sprintf("%.3f", o.Ratio), o.Ratio >= 0.97)
	}
	for _, s := range r.Stores {
		add(fmt.Sprintf("export time ÷ checkpoint+tar|zstd (%s)", progress.HumanBytes(s.StoreBytes)), "≤ 1.0", fmt.Sprintf("%.2f", s.ExportTimeRatio()), s.ExportTimeRatio() <= 1)
		add(fmt.Sprintf("export bytes ÷ tar|zstd (%s)", progress.HumanBytes(s.StoreBytes)), "≤ 1.0", fmt.Sprintf("%.2f", s.ExportBytesRatio()), s.ExportBytesRatio() <= 1)
		q := s.Restore.Seconds / s.BackupRestSecs
		add(fmt.Sprintf("restore time ÷ BackupEngine (%s)", progress.HumanBytes(s.StoreBytes)), "≤ 1.5", fmt.Sprintf("%.2f", q), q <= 1.5)
	}
	if len(r.Stores) == 2 {
		a, b := r.Stores[0], r.Stores[1]
		for _, x := range []struct {
			name   string
			lo, hi int64
		}{{"export", a.Export.PeakRSS, b.Export.PeakRSS}, {"restore", a.Restore.PeakRSS, b.Restore.PeakRSS}} {
			q := float64(x.hi) / float64(max(x.lo, 1))
			add(fmt.Sprintf("peak RSS of %s, 4× store ÷ 1×", x.name), fmt.Sprintf("flat (≤ %.2f)", flatRSS),
				fmt.Sprintf("%.2f (%s → %s)", q, progress.HumanBytes(x.lo), progress.HumanBytes(x.hi)), q <= flatRSS)
		}
	}
	return gs
}

// putKinds says what the PUTs were for, e.g. "lease 3".
func putKinds(c Counts) string {
	var parts []string
	for _, k := range []string{kindSegment, kindExport, kindMeta, kindLease, kindOther} {
		if n := c[opPUT+"/"+k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func phaseName(l LagResult) string {
	if l.Rate > 0 {
		return fmt.Sprintf("%d tx/s", l.Rate)
	}
	return "full speed"
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// WriteTable writes the report as plain-text tables: absolute figures,
// then ratios against the baselines, then the goals.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "tailer bench (%s mode), %.0f s\n", r.Mode, m.Seconds)
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s RAM, %s, RocksDB %s; load avg %s at start, %s at end\n",
		m.CPUs, m.CPUModel, progress.HumanBytes(m.MemoryBytes), m.Go, m.RocksDB, m.LoadStart, m.LoadEnd)
	if len(r.Stores) == 2 && r.Stores[0].Target < 1<<30 {
		fmt.Fprintf(w, "stores: %s and %s (smaller than the issue's ≥ 1 GiB and 4 GiB to keep the run short; --size 1GiB for those)\n",
			progress.HumanBytes(r.Stores[0].StoreBytes), progress.HumanBytes(r.Stores[1].StoreBytes))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if t := r.Tailing; t != nil {
		fmt.Fprintf(tw, "\nLAG: commit on the primary → segment confirmed by MinIO\n")
		fmt.Fprintf(tw, "load\ttx/s\ttx\tsegments\tp50\tp99\tmax\tunmatched\n")
		for _, l := range t.Lag {
			fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%s\t%s\t%s\t%d\n", phaseName(l), l.TxPerSec, l.Tx, l.Segments, secs(l.P50), secs(l.P99), secs(l.Max), l.Unmatched)
		}
	}
	if o := r.Overhead; o != nil {
		fmt.Fprintf(tw, "\nOVERHEAD: load generator at full speed, %d × %.0f s each, alternated\n", len(o.Rounds), o.Seconds)
		fmt.Fprintf(tw, "with tailer\twithout\tratio\tper round\ttailer CPU\tMinIO CPU\n")
		var rs []string
		for _, x := range o.Rounds {
			rs = append(rs, fmt.Sprintf("%.3f", x.Ratio))
		}
		fmt.Fprintf(tw, "%.0f tx/s\t%.0f tx/s\t%.3f\t%s\t%.2f cores\t%.2f cores\n", o.WithTxPS, o.WithoutTxPS, o.Ratio, strings.Join(rs, " "), o.TailerCores, o.MinioCores)
	}
	if len(r.Stores) > 0 {
		fmt.Fprintf(tw, "\nFULL EXPORT: tailer export (hot, to a directory) vs checkpoint + tar | zstd -3\n")
		fmt.Fprintf(tw, "store\ttailer\tckpt+tar|zstd\ttime ratio\ttailer bytes\ttar.zst bytes\tbytes ratio\t(BackupEngine backup)\n")
		for _, s := range r.Stores {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%s\t%.2f\t%s\n", progress.HumanBytes(s.StoreBytes), secs(s.Export.Seconds), secs(s.CheckpointSecs+s.TarZstd.Seconds),
				s.ExportTimeRatio(), progress.HumanBytes(s.ExportBytes), progress.HumanBytes(s.TarZstdBytes), s.ExportBytesRatio(), secs(s.BackupSecs))
		}
		fmt.Fprintf(tw, "\nRESTORE: tailer restore (from a directory) vs copying the checkpoint back, untar, BackupEngine\n")
		fmt.Fprintf(tw, "store\ttailer\tcopy back\tzstd -d|tar -x\tBackupEngine\t÷ copy\t÷ BackupEngine\n")
		for _, s := range r.Stores {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\n", progress.HumanBytes(s.StoreBytes), secs(s.Restore.Seconds), secs(s.CopyBackSecs), secs(s.UntarSecs),
				secs(s.BackupRestSecs), s.Restore.Seconds/s.CopyBackSecs, s.Restore.Seconds/s.BackupRestSecs)
		}
		fmt.Fprintf(tw, "\nMEMORY: peak RSS of the tailer process (VmHWM)\n")
		fmt.Fprintf(tw, "store\texport\trestore\n")
		for _, s := range r.Stores {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", progress.HumanBytes(s.StoreBytes), progress.HumanBytes(s.Export.PeakRSS), progress.HumanBytes(s.Restore.PeakRSS))
		}
	}
	if t := r.Tailing; t != nil {
		fmt.Fprintf(tw, "\nCOST: S3 requests (HTTP requests seen by tailer's client; PUT includes POST, GET includes HEAD)\n")
		fmt.Fprintf(tw, "phase\tseconds\tPUT\tGET\tLIST\tDELETE\tPUT/h\tGET/h\tLIST/h\tPUTs were\n")
		for _, c := range t.Costs {
			fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%s\n", c.Phase, c.Seconds, c.Counts[opPUT], c.Counts[opGET], c.Counts[opLIST], c.Counts[opDELETE],
				c.PerHour[opPUT], c.PerHour[opGET], c.PerHour[opLIST], putKinds(c.Counts))
		}
		c := t.RestoreCost
		fmt.Fprintf(tw, "one restore (%s fetched, %s)\t%.1f\t%d\t%d\t%d\t%d\t\t\t\t\n", progress.HumanBytes(t.RestoreBytes), secs(t.RestoreSeconds), c.Seconds,
			c.Counts[opPUT], c.Counts[opGET], c.Counts[opLIST], c.Counts[opDELETE])
	}
	if len(r.Goals) > 0 {
		fmt.Fprintf(tw, "\nGOALS\n")
		fmt.Fprintf(tw, "goal\ttarget\tmeasured\tmet\n")
		for _, g := range r.Goals {
			ok := "MISSED"
			if g.Met {
				ok = "met"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Name, g.Target, g.Measured, ok)
		}
	}
	return tw.Flush()
}

func secs(s float64) string {
	switch {
	case s < 0:
		return "n/a"
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	default:
		return fmt.Sprintf("%.2f s", s)
	}
}
