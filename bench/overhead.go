package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/minioserver"
)

// OverheadRun is one run of the load generator at full speed on a fresh
// store from the same seed: without tailer (Binary ""), or with one
// binary's `tailer run` shipping the store to MinIO.
type OverheadRun struct {
	Binary string `json:"binary,omitempty"`
	Tx     int    `json:"tx"`
	// TailerCores and MinioCores are the CPU the `tailer run` process and
	// MinIO used during the run (CPU seconds ÷ wall seconds): on a machine
	// with few cores they are what the primary loses.
	TailerCores float64 `json:"tailer_cores,omitempty"`
	MinioCores  float64 `json:"minio_cores,omitempty"`
}

// OverheadRound is one run without tailer and one with each binary, in
// an order that rotates from round to round.
type OverheadRound struct {
	Runs []OverheadRun `json:"runs"`
}

// OverheadBinary sums one binary's runs: Ratio is its total tx ÷ the
// total tx without tailer, over the same total time.
type OverheadBinary struct {
	Binary      string    `json:"binary"`
	WithTxPS    float64   `json:"with_tailer_tx_per_sec"`
	Ratio       float64   `json:"ratio"`
	RoundRatios []float64 `json:"round_ratios"`
	TailerCores float64   `json:"tailer_cores"` // mean over the rounds
	MinioCores  float64   `json:"minio_cores"`
}

// OverheadResult is the overhead phase.
type OverheadResult struct {
	Seconds     float64          `json:"seconds_per_run"`
	Rounds      []OverheadRound  `json:"rounds"`
	WithoutTxPS float64          `json:"without_tailer_tx_per_sec"`
	Binaries    []OverheadBinary `json:"binaries"`
}

// Find returns binary's figures (nil if it did not run).
func (r *OverheadResult) Find(binary string) *OverheadBinary {
	for i := range r.Binaries {
		if r.Binaries[i].Binary == binary {
			return &r.Binaries[i]
		}
	}
	return nil
}

// rotate is round i's order of the runs: without tailer, then each
// binary, rotated by i, so every one takes every place in turn and a
// drift in the machine's load does not favour one.
func rotate(names []string, i int) []string {
	n := len(names)
	out := make([]string, 0, n)
	for k := 0; k < n; k++ {
		out = append(out, names[(i+k)%n])
	}
	return out
}

// runOverhead alternates runs without tailer and with each binary. tailer
// runs as its own process, as beside Stalwart, straight to MinIO (not
// through the bench's proxy, whose CPU would be the primary's), so the
// ratio includes its CPU, I/O and page-cache competition with the primary.
func runOverhead(ctx context.Context, o Options, srv *minioserver.Server) (*OverheadResult, error) {
	bs := o.binaries()
	names := []string{""}
	for _, b := range bs {
		names = append(names, b.Name)
	}
	res := &OverheadResult{Seconds: o.OverheadDuration.Seconds()}
	for i := 0; i < o.OverheadRounds; i++ {
		var rd OverheadRound
		for _, name := range rotate(names, i) {
			var b *Binary
			for j := range bs {
				if bs[j].Name == name {
					b = &bs[j]
				}
			}
			r, err := overheadRun(ctx, o, srv, i, b)
			if err != nil {
				return nil, err
			}
			rd.Runs = append(rd.Runs, r)
		}
		o.progress("  round %d: %s", i+1, roundLine(rd))
		res.Rounds = append(res.Rounds, rd)
	}
	summarizeOverhead(res, bs, o.OverheadDuration.Seconds())
	return res, nil
}

// summarizeOverhead fills res's totals from its rounds.
func summarizeOverhead(res *OverheadResult, bs []Binary, secsPerRun float64) {
	total := secsPerRun * float64(len(res.Rounds))
	without := 0
	for _, rd := range res.Rounds {
		for _, r := range rd.Runs {
			if r.Binary == "" {
				without += r.Tx
			}
		}
	}
	res.WithoutTxPS = ratio(float64(without), total)
	res.Binaries = nil
	for _, b := range bs {
		ob := OverheadBinary{Binary: b.Name}
		with := 0
		for _, rd := range res.Rounds {
			var w, wo int
			for _, r := range rd.Runs {
				switch r.Binary {
				case "":
					wo = r.Tx
				case b.Name:
					w = r.Tx
					ob.TailerCores += r.TailerCores / float64(len(res.Rounds))
					ob.MinioCores += r.MinioCores / float64(len(res.Rounds))
				}
			}
			with += w
			ob.RoundRatios = append(ob.RoundRatios, ratio(float64(w), float64(wo)))
		}
		ob.WithTxPS = ratio(float64(with), total)
		ob.Ratio = ratio(float64(with), float64(without))
		res.Binaries = append(res.Binaries, ob)
	}
}

func roundLine(rd OverheadRound) string {
	var parts []string
	for _, r := range rd.Runs {
		if r.Binary == "" {
			parts = append(parts, fmt.Sprintf("%d tx without tailer", r.Tx))
		} else {
			parts = append(parts, fmt.Sprintf("%d tx with %s (%.2f cores, MinIO %.2f)", r.Tx, r.Binary, r.TailerCores, r.MinioCores))
		}
	}
	return strings.Join(parts, ", ")
}

// overheadRun runs the load generator for OverheadDuration, with b's
// `tailer run` shipping the store (b nil: without tailer).
func overheadRun(ctx context.Context, o Options, srv *minioserver.Server, round int, b *Binary) (OverheadRun, error) {
	var res OverheadRun
	dir := filepath.Join(o.Work, "overhead")
	os.RemoveAll(dir)
	defer func() {
		if !o.Keep {
			os.RemoveAll(dir)
		}
	}()
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: o.Seed, MaxTotalWALSize: -1})
	if err != nil {
		return res, err
	}
	defer g.Close()
	pids := []int{0, srv.PID()}
	if b != nil {
		res.Binary = b.Name
		prefix := fmt.Sprintf("overhead-%s-%d", b.Name, round+1)
		p, err := startTailer(ctx, o, *b, srv.Env(), srv.URL(bucket, prefix), g.Dir(), filepath.Join(dir, "scratch"), prefix)
		if err != nil {
			return res, err
		}
		defer p.Stop()
		pids[0] = p.Pid
	}
	var cpu0 [2]float64
	for i, p := range pids {
		cpu0[i], _ = cpuSeconds(p)
	}
	t0 := time.Now()
	rctx, cancel := context.WithTimeout(ctx, o.OverheadDuration)
	defer cancel()
	n, err := g.Run(rctx, 0, 0)
	if err != nil {
		return res, fmt.Errorf("overhead load: %w", err)
	}
	el := time.Since(t0).Seconds()
	res.Tx = n
	if b != nil {
		var cores [2]float64
		for i, p := range pids {
			c, _ := cpuSeconds(p)
			cores[i] = (c - cpu0[i]) / el
		}
		res.TailerCores, res.MinioCores = cores[0], cores[1]
	}
	return res, nil
}
