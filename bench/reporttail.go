package bench

import (
	"fmt"
	"io"
	"strings"

	"github.com/tailer-backup/tailer/internal/progress"
)

// writeLag prints the lag phases (each binary, then candidate ÷
// baseline) and the sweep.
func writeLag(w io.Writer, t *TailingResult) {
	fmt.Fprintf(w, "\nLAG: commit on the primary → MinIO's 200 for the PUT of the segment holding it (seen by the bench's proxy); %d × %.0f s of load per binary, alternated\n", t.Rounds, t.RunSeconds)
	for _, b := range t.Binaries {
		fmt.Fprintf(w, "%s:\t%s %s\n", b.Name, b.Path, strings.Join(b.Args, " "))
	}
	fmt.Fprintf(w, "load\ttailer\ttx/s\ttx\tsegments\tp50\tp99\tmax\tunmatched\tPUT/s\tPUT/h\tCPU cores\tCPU s/MB raw\tsegment bytes ÷ raw\n")
	row := func(l LagResult) {
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%d\t%d\t%s\t%s\t%s\t%d\t%.2f\t%.0f\t%s\t%s\t%s\n", phaseLabel(l.Rate), l.Binary, l.TxPerSec, l.Tx, l.Segments,
			secs(l.P50), secs(l.P99), secs(l.Max), l.Unmatched, l.PUTsPerSec, l.PUTsPerHour(), fmtRatio(l.Cores()), fmtRatio3(l.CPUPerMB()),
			fmtRatio(ratio(float64(l.SegmentBytes), l.RawBytes)))
	}
	for _, l := range t.Lag {
		row(l)
		if l.Binary != "baseline" {
			continue
		}
		if c := t.Find(l.Phase, "candidate"); c != nil {
			fmt.Fprintf(w, "%s\tcand ÷ base\t%s\t\t\t%s\t%s\t%s\t\t%s\t\t%s\t%s\t\n", phaseLabel(l.Rate), fmtRatio(ratio(c.TxPerSec, l.TxPerSec)),
				fmtRatio(ratio(c.P50, l.P50)), fmtRatio(ratio(c.P99, l.P99)), fmtRatio(ratio(c.Max, l.Max)), fmtRatio(ratio(c.PUTsPerSec, l.PUTsPerSec)),
				fmtRatio(ratio(c.Cores(), l.Cores())), fmtRatio(ratio(c.CPUPerMB(), l.CPUPerMB())))
		}
	}
	if len(t.Sweep) == 0 {
		return
	}
	fmt.Fprintf(w, "\nSWEEP: candidate at %s, one %.0f s run per setting (after its other flags)\n", phaseLabel(t.Sweep[0].Rate), t.RunSeconds)
	fmt.Fprintf(w, "setting\ttx/s\tp50\tp99\tmax\tunmatched\tPUT/s\tPUT/h\tCPU s/MB raw\n")
	for _, l := range t.Sweep {
		fmt.Fprintf(w, "%s\t%.0f\t%s\t%s\t%s\t%d\t%.2f\t%.0f\t%s\n", l.Setting, l.TxPerSec, secs(l.P50), secs(l.P99), secs(l.Max), l.Unmatched,
			l.PUTsPerSec, l.PUTsPerHour(), fmtRatio3(l.CPUPerMB()))
	}
}

// writeOverhead prints the throughput of the primary with ÷ without each
// binary.
func writeOverhead(w io.Writer, o *OverheadResult) {
	fmt.Fprintf(w, "\nOVERHEAD: load generator at full speed, %d rounds × %.0f s per run (without tailer and with each binary, rotated)\n", len(o.Rounds), o.Seconds)
	fmt.Fprintf(w, "tailer\twith tailer\twithout\tratio\tper round\ttailer CPU\tMinIO CPU\n")
	for _, b := range o.Binaries {
		var rs []string
		for _, x := range b.RoundRatios {
			rs = append(rs, fmtRatio3(x))
		}
		fmt.Fprintf(w, "%s\t%.0f tx/s\t%.0f tx/s\t%s\t%s\t%.2f cores\t%.2f cores\n", b.Binary, b.WithTxPS, o.WithoutTxPS, fmtRatio3(b.Ratio), strings.Join(rs, " "), b.TailerCores, b.MinioCores)
	}
	c, b := o.Find("candidate"), o.Find("baseline")
	if c != nil && b != nil {
		fmt.Fprintf(w, "cand ÷ base\t%s\t\t%s\t\t%s\t\n", fmtRatio(ratio(c.WithTxPS, b.WithTxPS)), fmtRatio3(ratio(c.Ratio, b.Ratio)), fmtRatio(ratio(c.TailerCores, b.TailerCores)))
	}
}

// writeCost prints the S3 requests per phase and binary.
func writeCost(w io.Writer, t *TailingResult) {
	fmt.Fprintf(w, "\nCOST: S3 requests (seen by the bench's proxy; PUT includes POST, GET includes HEAD)\n")
	fmt.Fprintf(w, "phase\ttailer\tseconds\tPUT\tGET\tLIST\tDELETE\tPUT/h\tGET/h\tLIST/h\tPUTs were\n")
	for _, c := range t.Costs {
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%s\n", c.Phase, c.Binary, c.Seconds, c.Counts[opPUT], c.Counts[opGET], c.Counts[opLIST], c.Counts[opDELETE],
			c.PerHour[opPUT], c.PerHour[opGET], c.PerHour[opLIST], putKinds(c.Counts))
	}
	if c := t.RestoreCost; c != nil {
		fmt.Fprintf(w, "one restore (%s fetched, %s)\t%s\t%.1f\t%d\t%d\t%d\t%d\t\t\t\t\n", progress.HumanBytes(t.RestoreBytes), secs(t.RestoreSeconds), c.Binary, c.Seconds,
			c.Counts[opPUT], c.Counts[opGET], c.Counts[opLIST], c.Counts[opDELETE])
	}
}

func fmtRatio3(q float64) string {
	if q < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", q)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
