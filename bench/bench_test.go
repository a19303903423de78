package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs the whole bench on tiny stores and short phases, so CI
// proves `tailer bench` works end to end. It asserts that every figure is
// produced and sane (counts add up, quantiles are ordered, every committed
// transaction was found in a confirmed segment), never how fast anything
// was: the machine may be busy.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tailer and runs MinIO")
	}
	bin := filepath.Join(t.TempDir(), "tailer")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/tailer-backup/tailer/cmd/tailer").CombinedOutput(); err != nil {
		t.Fatalf("build tailer: %v\n%s", err, out)
	}
	o := Quick()
	o.Bin, o.Work = bin, t.TempDir()
	o.Size, o.LagDuration, o.IdleDuration, o.OverheadDuration = 2<<20, 2*time.Second, 2*time.Second, time.Second
	var progress bytes.Buffer
	o.Progress = &progress
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}

	tl := rep.Tailing
	if len(tl.Lag) != 2 {
		t.Fatalf("%d lag phases, want steady and full speed", len(tl.Lag))
	}
	for _, l := range tl.Lag {
		if l.Tx == 0 || l.Matched != l.Tx || l.Unmatched != 0 || l.Segments == 0 {
			t.Errorf("%s: %d tx, %d matched, %d unmatched, %d segments: every committed tx must be found in a confirmed segment", l.Phase, l.Tx, l.Matched, l.Unmatched, l.Segments)
		}
		if !(0 <= l.P50 && l.P50 <= l.P99 && l.P99 <= l.Max) {
			t.Errorf("%s: quantiles out of order: p50 %v p99 %v max %v", l.Phase, l.P50, l.P99, l.Max)
		}
		if l.CPUSeconds <= 0 || l.RawBytes <= 0 || l.SegmentBytes <= 0 {
			t.Errorf("%s: CPU %v s, %v raw bytes, %d segment bytes: the subprocess's CPU and bytes must be measured", l.Phase, l.CPUSeconds, l.RawBytes, l.SegmentBytes)
		}
	}
	for _, c := range tl.Costs {
		if c.Counts[opPUT] < c.Counts[opPUT+"/"+kindSegment] {
			t.Errorf("%s: %d PUTs but %d segment PUTs", c.Phase, c.Counts[opPUT], c.Counts[opPUT+"/"+kindSegment])
		}
		// A loaded phase's segments may all be confirmed just after its
		// window (short phases, a busy machine): only idle is asserted.
		if c.Phase == "idle" && c.Counts[opPUT+"/"+kindSegment] != 0 {
			t.Errorf("idle: %d segment PUTs with nothing written", c.Counts[opPUT+"/"+kindSegment])
		}
	}
	if tl.RestoreCost == nil || tl.RestoreCost.Counts[opGET] == 0 || tl.RestoreCost.Counts[opLIST] == 0 || tl.RestoreBytes == 0 {
		t.Errorf("restore from MinIO: %+v, %d bytes", tl.RestoreCost, tl.RestoreBytes)
	}

	ov := rep.Overhead
	if len(ov.Rounds) != 1 || len(ov.Rounds[0].Runs) != 2 || ov.Find("candidate") == nil || ov.Find("candidate").Ratio <= 0 || ov.WithoutTxPS <= 0 {
		t.Errorf("overhead: %+v", ov)
	}

	if len(rep.Stores) != 2 {
		t.Fatalf("%d stores, want 2", len(rep.Stores))
	}
	for _, s := range rep.Stores {
		if s.StoreBytes < s.Target || s.Tx == 0 {
			t.Errorf("store of %d bytes built %d bytes in %d tx", s.Target, s.StoreBytes, s.Tx)
		}
		if s.ExportBytes == 0 || s.TarZstdBytes == 0 || s.Export.PeakRSS == 0 || s.Restore.PeakRSS == 0 {
			t.Errorf("store %d: export %d bytes, tar.zst %d bytes, peak RSS export %d restore %d", s.StoreBytes, s.ExportBytes, s.TarZstdBytes, s.Export.PeakRSS, s.Restore.PeakRSS)
		}
		for name, v := range map[string]float64{"export": s.Export.Seconds, "restore": s.Restore.Seconds, "tar": s.TarZstd.Seconds,
			"copy back": s.CopyBackSecs, "untar": s.UntarSecs, "BackupEngine restore": s.BackupRestSecs} {
			if v <= 0 {
				t.Errorf("store %d: %s took %v s", s.StoreBytes, name, v)
			}
		}
	}
	if rep.Stores[1].StoreBytes <= rep.Stores[0].StoreBytes {
		t.Errorf("the large store (%d) is not larger than the small one (%d)", rep.Stores[1].StoreBytes, rep.Stores[0].StoreBytes)
	}
	if len(rep.Goals) < 12 {
		t.Errorf("%d goals reported: %+v", len(rep.Goals), rep.Goals)
	}

	var table, js bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LAG", "OVERHEAD", "FULL EXPORT", "RESTORE", "MEMORY", "COST", "GOALS"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table has no %s section:\n%s", want, table.String())
		}
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Stores) != 2 {
		t.Errorf("JSON does not round-trip: %v", err)
	}
	t.Logf("\n%s", table.String())
}
