package bench

import (
	"encoding/json"
	"fmt"
	"github.com/tailer-backup/tailer/internal/progress"
	"io"
	"strings"
	"text/tabwriter"
)

// Goal is one of the issues' targets and whether this run met it; the
// candidate's figure, and the baseline's when one ran.
type Goal struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Baseline string `json:"baseline,omitempty"`
	Ratio    string `json:"ratio,omitempty"` // candidate ÷ baseline
	Met      bool   `json:"met"`
}

// flatRSS is how much tailer's peak RSS may grow when the store grows 4×
// and still count as "flat": a fixed cost (buffers, zstd windows, RocksDB
// caches) is allowed, a share of the store is not.
const flatRSS = 1.25

// Issue 16's targets.
const (
	goalSteadyP50   = 0.300 // s, at 1,000 tx/s
	goalSteadyP99   = 0.500 // s
	goalSteadyPUTs  = 5.0   // PUT/s
	goalFullP99     = 1.0   // s
	goalCPUPerMB    = 0.60  // candidate ÷ baseline
	goalOverheadMin = 0.90  // throughput with ÷ without tailer
)

func goals(r *Report) []Goal {
	var gs []Goal
	add := func(g Goal) { gs = append(gs, g) }
	if t := r.Tailing; t != nil {
		if c := t.Find(phaseSteady, "candidate"); c != nil {
			b := t.Find(phaseSteady, "baseline")
			at := phaseLabel(c.Rate)
			ok := c.Unmatched == 0
			add(lagGoal("lag p50 at "+at, goalSteadyP50, c, b, func(l *LagResult) float64 { return l.P50 }, ok))
			add(lagGoal("lag p99 at "+at, goalSteadyP99, c, b, func(l *LagResult) float64 { return l.P99 }, ok))
			g := Goal{Name: "PUTs at " + at, Target: fmt.Sprintf("≤ %.0f/s", goalSteadyPUTs), Measured: fmt.Sprintf("%.2f/s", c.PUTsPerSec),
				Met: c.PUTsPerSec >= 0 && c.PUTsPerSec <= goalSteadyPUTs}
			if b != nil {
				g.Baseline, g.Ratio = fmt.Sprintf("%.2f/s", b.PUTsPerSec), fmtRatio(ratio(c.PUTsPerSec, b.PUTsPerSec))
			}
			add(g)
		}
		if c := t.Find(phaseFull, "candidate"); c != nil {
			b := t.Find(phaseFull, "baseline")
			add(lagGoal("lag p99 at full speed", goalFullP99, c, b, func(l *LagResult) float64 { return l.P99 }, c.Unmatched == 0))
			g := Goal{Name: "tailer CPU per shipped MB (raw batches, full speed)", Target: fmt.Sprintf("≤ %.1f× baseline", goalCPUPerMB),
				Measured: fmtCPUPerMB(c.CPUPerMB()), Baseline: "needs --baseline"}
			if b != nil {
				q := ratio(c.CPUPerMB(), b.CPUPerMB())
				g.Baseline, g.Ratio, g.Met = fmtCPUPerMB(b.CPUPerMB()), fmtRatio(q), q >= 0 && q <= goalCPUPerMB
			}
			add(g)
		}
		for _, c := range t.Costs {
			if c.Phase == "idle" && c.Binary == "candidate" {
				data := c.Counts[opPUT+"/"+kindSegment] + c.Counts[opPUT+"/"+kindExport]
				add(Goal{Name: "data PUTs while idle", Target: "0", Measured: fmt.Sprintf("%d in %.0f s (all PUTs: %s)", data, c.Seconds, putKinds(c.Counts)), Met: data == 0})
			}
		}
	}
	if o := r.Overhead; o != nil {
		if c := o.Find("candidate"); c != nil {
			g := Goal{Name: "primary throughput with ÷ without tailer (full speed)", Target: fmt.Sprintf("≥ %.2f", goalOverheadMin),
				Measured: fmt.Sprintf("%.3f", c.Ratio), Met: c.Ratio >= goalOverheadMin}
			if b := o.Find("baseline"); b != nil {
				g.Baseline, g.Ratio = fmt.Sprintf("%.3f (change %+.3f)", b.Ratio, c.Ratio-b.Ratio), fmtRatio(ratio(c.Ratio, b.Ratio))
			}
			add(g)
		}
	}
	for _, s := range r.Stores {
		add(Goal{Name: fmt.Sprintf("export time ÷ checkpoint+tar|zstd (%s)", progress.HumanBytes(s.StoreBytes)), Target: "≤ 1.0", Measured: fmt.Sprintf("%.2f", s.ExportTimeRatio()), Met: s.ExportTimeRatio() <= 1})
		add(Goal{Name: fmt.Sprintf("export bytes ÷ tar|zstd (%s)", progress.HumanBytes(s.StoreBytes)), Target: "≤ 1.0", Measured: fmt.Sprintf("%.2f", s.ExportBytesRatio()), Met: s.ExportBytesRatio() <= 1})
		q := s.Restore.Seconds / s.BackupRestSecs
		add(Goal{Name: fmt.Sprintf("restore time ÷ BackupEngine (%s)", progress.HumanBytes(s.StoreBytes)), Target: "≤ 1.5", Measured: fmt.Sprintf("%.2f", q), Met: q <= 1.5})
	}
	if len(r.Stores) == 2 {
		a, b := r.Stores[0], r.Stores[1]
		for _, x := range []struct {
			name   string
			lo, hi int64
		}{{"export", a.Export.PeakRSS, b.Export.PeakRSS}, {"restore", a.Restore.PeakRSS, b.Restore.PeakRSS}} {
			q := float64(x.hi) / float64(max(x.lo, 1))
			add(Goal{Name: fmt.Sprintf("peak RSS of %s, 4× store ÷ 1×", x.name), Target: fmt.Sprintf("flat (≤ %.2f)", flatRSS),
				Measured: fmt.Sprintf("%.2f (%s → %s)", q, progress.HumanBytes(x.lo), progress.HumanBytes(x.hi)), Met: q <= flatRSS})
		}
	}
	return gs
}

// lagGoal is a "≤ limit seconds" goal on one quantile of the candidate,
// with the baseline's figure and the ratio when b is not nil.
func lagGoal(name string, limit float64, c, b *LagResult, q func(*LagResult) float64, ok bool) Goal {
	g := Goal{Name: name, Target: "≤ " + secs(limit), Measured: secs(q(c)), Met: ok && q(c) >= 0 && q(c) <= limit}
	if b != nil {
		g.Baseline, g.Ratio = secs(q(b)), fmtRatio(ratio(q(c), q(b)))
	}
	return g
}

func fmtRatio(q float64) string {
	if q < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", q)
}

func fmtCPUPerMB(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f CPU s/MB", v)
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
	fmt.Fprintf(w, "candidate: %s\n", r.Candidate)
	if r.Baseline != "" {
		rev := ""
		if r.BaselineRev != "" {
			rev = " (built from " + r.BaselineRev + ")"
		}
		fmt.Fprintf(w, "baseline: %s%s; ratios are candidate ÷ baseline, measured in this run\n", r.Baseline, rev)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if t := r.Tailing; t != nil {
		writeLag(tw, t)
	}
	if o := r.Overhead; o != nil {
		writeOverhead(tw, o)
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
		writeCost(tw, t)
	}
	if len(r.Goals) > 0 {
		fmt.Fprintf(tw, "\nGOALS\n")
		fmt.Fprintf(tw, "goal\ttarget\tcandidate\tbaseline\tcand ÷ base\tmet\n")
		for _, g := range r.Goals {
			ok := "MISSED"
			if g.Met {
				ok = "met"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", g.Name, g.Target, g.Measured, orDash(g.Baseline), orDash(g.Ratio), ok)
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
