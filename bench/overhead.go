package bench

import (
	"context"
	"fmt"
	"github.com/tailer-backup/tailer/internal/minioserver"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tailer-backup/tailer/integration/loadgen"
)

// OverheadRound is one pair of equal runs of the load generator at full
// speed, from the same seed on a fresh store, with and without `tailer
// run` shipping the store to MinIO.
type OverheadRound struct {
	WithTx    int     `json:"with_tailer_tx"`
	WithoutTx int     `json:"without_tailer_tx"`
	Ratio     float64 `json:"ratio"`
	// TailerCores and MinioCores are the CPU the `tailer run` process and
	// MinIO used during the run with tailer (CPU seconds ÷ wall seconds):
	// on a machine with few cores they are what the primary loses.
	TailerCores float64 `json:"tailer_cores"`
	MinioCores  float64 `json:"minio_cores"`
}

// OverheadResult sums the rounds: Ratio is total tx with tailer ÷ total
// tx without, over the same total time.
type OverheadResult struct {
	Seconds     float64         `json:"seconds_per_run"`
	Rounds      []OverheadRound `json:"rounds"`
	WithTxPS    float64         `json:"with_tailer_tx_per_sec"`
	WithoutTxPS float64         `json:"without_tailer_tx_per_sec"`
	Ratio       float64         `json:"ratio"`
	TailerCores float64         `json:"tailer_cores"` // mean over the rounds
	MinioCores  float64         `json:"minio_cores"`
}

// runOverhead alternates runs with and without tailer (ABBA order across
// rounds, so a drift in the machine's load does not favour one side).
// tailer runs as its own process, as beside Stalwart, so the ratio
// includes its CPU, I/O and page-cache competition with the primary.
func runOverhead(ctx context.Context, o Options, srv *minioserver.Server) (*OverheadResult, error) {
	res := &OverheadResult{Seconds: o.OverheadDuration.Seconds()}
	var with, without int
	for i := 0; i < o.OverheadRounds; i++ {
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		var r OverheadRound
		for _, tailing := range order {
			n, cores, err := overheadRun(ctx, o, srv, i, tailing)
			if err != nil {
				return nil, err
			}
			if tailing {
				r.WithTx, r.TailerCores, r.MinioCores = n, cores[0], cores[1]
			} else {
				r.WithoutTx = n
			}
		}
		r.Ratio = float64(r.WithTx) / float64(max(r.WithoutTx, 1))
		o.progress("  round %d: %d tx with tailer, %d without (%.3f); tailer used %.2f cores, MinIO %.2f", i+1, r.WithTx, r.WithoutTx, r.Ratio, r.TailerCores, r.MinioCores)
		res.Rounds = append(res.Rounds, r)
		res.TailerCores += r.TailerCores / float64(o.OverheadRounds)
		res.MinioCores += r.MinioCores / float64(o.OverheadRounds)
		with += r.WithTx
		without += r.WithoutTx
	}
	total := o.OverheadDuration.Seconds() * float64(o.OverheadRounds)
	res.WithTxPS, res.WithoutTxPS = float64(with)/total, float64(without)/total
	res.Ratio = float64(with) / float64(max(without, 1))
	return res, nil
}

// overheadRun returns the transactions written and, with tailing, the
// cores tailer and MinIO used meanwhile.
func overheadRun(ctx context.Context, o Options, srv *minioserver.Server, round int, tailing bool) (int, [2]float64, error) {
	var cores [2]float64
	dir := filepath.Join(o.Work, "overhead")
	os.RemoveAll(dir)
	defer func() {
		if !o.Keep {
			os.RemoveAll(dir)
		}
	}()
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: o.Seed, MaxTotalWALSize: -1})
	if err != nil {
		return 0, cores, err
	}
	defer g.Close()
	pids := []int{0, srv.PID()}
	if tailing {
		pid, stop, err := startTailer(ctx, o, srv, g.Dir(), filepath.Join(dir, "scratch"), fmt.Sprintf("overhead-%d", round))
		if err != nil {
			return 0, cores, err
		}
		defer stop()
		pids[0] = pid
	}
	var cpu0 [2]float64
	for i, p := range pids {
		cpu0[i], _ = cpuSeconds(p)
	}
	t0 := time.Now()
	rctx, cancel := context.WithTimeout(ctx, o.OverheadDuration)
	defer cancel()
	n, err := g.Run(rctx, 0, 0)
	el := time.Since(t0).Seconds()
	if tailing {
		for i, p := range pids {
			c, _ := cpuSeconds(p)
			cores[i] = (c - cpu0[i]) / el
		}
	}
	return n, cores, err
}

// cpuSeconds is the user + system CPU time of process pid so far, from
// /proc/PID/stat (in clock ticks of 1/100 s, Linux's USER_HZ).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return (utime + stime) / 100, nil
}

// startTailer starts `tailer run` on db and returns its pid once it is
// ready (first export shipped, a poll caught up); stop sends SIGTERM and
// waits.
func startTailer(ctx context.Context, o Options, srv *minioserver.Server, db, scratch, prefix string) (pid int, stop func(), err error) {
	port, err := minioserver.FreePort()
	if err != nil {
		return 0, nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logf, err := os.Create(filepath.Join(o.Work, prefix+".log"))
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.Command(o.Bin, "run", "--db", db, "--scratch", scratch, "--replica", srv.URL(bucket, prefix),
		"--listen", addr, "--log-format", "text", "--log-level", "warn")
	cmd.Env = append(os.Environ(), srv.Env()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return 0, nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd.Process.Pid, stop, nil
			}
		}
		select {
		case <-done:
			return 0, nil, fmt.Errorf("tailer run exited before it was ready (log: %s)", logf.Name())
		case <-ctx.Done():
			stop()
			return 0, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return 0, nil, fmt.Errorf("tailer run not ready after 2 minutes (log: %s)", logf.Name())
		}
	}
}
