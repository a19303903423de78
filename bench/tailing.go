package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/minioserver"
)

// LagResult is what one lag phase measured for one binary, over all its
// rounds: the RPO — for every transaction committed in the phase, the time
// from its commit on the primary to MinIO's 200 for the PUT of the
// segment holding it — and what shipping cost in requests and CPU.
type LagResult struct {
	Phase   string `json:"phase"`
	Binary  string `json:"binary"`            // candidate or baseline
	Setting string `json:"setting,omitempty"` // a sweep's extra flags
	Rate    int    `json:"rate"`              // asked tx/s; 0 is full speed
	Runs    int    `json:"runs"`
	// Seconds is the load's wall time, summed over the runs.
	Seconds   float64 `json:"seconds"`
	Tx        int     `json:"tx"`
	TxPerSec  float64 `json:"tx_per_sec"`
	Matched   int     `json:"matched"`   // transactions found in a confirmed segment
	Unmatched int     `json:"unmatched"` // committed but never seen confirmed (should be 0)
	Segments  int     `json:"segments"`  // segments confirmed from the load's start to the drain
	P50       float64 `json:"p50_s"`
	P99       float64 `json:"p99_s"`
	Max       float64 `json:"max_s"`
	// PUTs are every PUT/POST (segments, lease, exports...) answered
	// while the load ran; PUTsPerSec divides by Seconds.
	PUTs       int64   `json:"puts"`
	PUTsPerSec float64 `json:"puts_per_sec"`
	// CPUSeconds is the tailer process's utime+stime from the load's start
	// until the last transaction was confirmed (the drain), over
	// DrainSeconds of wall time; RawBytes the raw WriteBatch bytes it
	// sealed meanwhile (tailer_batch_bytes_total) and SegmentBytes the
	// segment objects' bytes PUT (single PUTs and multipart parts).
	CPUSeconds   float64 `json:"cpu_s"`
	DrainSeconds float64 `json:"drain_s"`
	RawBytes     float64 `json:"raw_batch_bytes"`
	SegmentBytes int64   `json:"segment_bytes"`
	// Counts are the requests answered while the load ran.
	Counts Counts `json:"counts"`
}

// Cores is the tailer's mean CPU use (cores) from load start to drain.
func (l LagResult) Cores() float64 { return ratio(l.CPUSeconds, l.DrainSeconds) }

// CPUPerMB is tailer's CPU seconds per MB (10⁶ bytes) of raw WriteBatch
// bytes shipped: the same data for every binary, whatever its segments'
// compression.
func (l LagResult) CPUPerMB() float64 { return ratio(l.CPUSeconds, l.RawBytes/1e6) }

// PUTsPerHour extrapolates PUTsPerSec.
func (l LagResult) PUTsPerHour() float64 { return l.PUTsPerSec * 3600 }

// Cost is the S3 requests made during a phase, extrapolated to one hour.
type Cost struct {
	Phase   string             `json:"phase"`
	Binary  string             `json:"binary,omitempty"`
	Seconds float64            `json:"seconds"`
	Counts  Counts             `json:"counts"`
	PerHour map[string]float64 `json:"per_hour,omitempty"`
}

// TailingResult gathers what the `tailer run` subprocesses measured.
type TailingResult struct {
	// Rounds and RunSeconds describe the lag phases: each binary ran
	// each phase Rounds times for RunSeconds of load.
	Rounds     int         `json:"rounds"`
	RunSeconds float64     `json:"run_seconds"`
	Binaries   []Binary    `json:"binaries"`
	Lag        []LagResult `json:"lag"`
	Sweep      []LagResult `json:"sweep,omitempty"`
	Costs      []Cost      `json:"cost"`
	// RestoreCost is one `tailer restore` (the candidate) from MinIO of
	// what the candidate's first steady run shipped; nil with --only lag.
	RestoreCost    *Cost   `json:"restore_cost,omitempty"`
	RestoreSeconds float64 `json:"restore_s"`
	RestoreBytes   int64   `json:"restore_downloaded_bytes"`
}

// Find returns the result of phase for binary ("" if none).
func (t *TailingResult) Find(phase, binary string) *LagResult {
	for i := range t.Lag {
		if t.Lag[i].Phase == phase && t.Lag[i].Binary == binary {
			return &t.Lag[i]
		}
	}
	return nil
}

// Phase names.
const (
	phaseSteady = "steady"
	phaseFull   = "full speed"
)

// lagRun is one run of a lag phase: a fresh primary (same seed for every
// binary), a fresh `tailer run` subprocess shipping it through the
// recording proxy, LagDuration of load, then the wait until every
// committed transaction is in a confirmed segment.
type lagRun struct {
	commits []commit
	segs    []confirmed
	tx      int
	el      time.Duration // the load
	drain   time.Duration // load start → last commit confirmed
	counts  Counts        // requests answered during the load
	segB    int64         // segment bytes PUT from load start to drain
	cpu     float64
	raw     float64
	idle    *Cost
	prefix  string
}

// tailingEnv is what every run shares.
type tailingEnv struct {
	srv *minioserver.Server
	rec *recorder
	env []string // a tailer subprocess's S3 environment (the proxy)
}

func (e tailingEnv) url(prefix string) string { return replicaURL(e.rec.Endpoint, prefix) }

// runLag runs one lag run of b at rate; idle > 0 adds an idle window
// after the drain, whose requests are returned as a Cost.
func runLag(ctx context.Context, o Options, e tailingEnv, b Binary, rate int, name string, idle time.Duration) (*lagRun, error) {
	dir := filepath.Join(o.Work, "lag", name)
	os.RemoveAll(dir)
	if !o.Keep {
		defer os.RemoveAll(dir)
	}
	var mu sync.Mutex
	recording := false
	r := &lagRun{prefix: name}
	g, err := loadgen.Open(loadgen.Config{
		Dir: filepath.Join(dir, "primary"), Seed: o.Seed, MaxTotalWALSize: -1,
		AfterTx: func(tx loadgen.Tx) error {
			now := time.Now()
			mu.Lock()
			if recording {
				r.commits = append(r.commits, commit{tx.LastSeq, now})
			}
			mu.Unlock()
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	if _, err := g.Run(ctx, 500, 0); err != nil { // something to export
		return nil, err
	}
	i0 := e.rec.mark()
	p, err := startTailer(ctx, o, b, e.env, e.url(name), g.Dir(), filepath.Join(dir, "scratch"), name)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	// Let the first catch-up after the export settle before timing.
	if err := sleep(ctx, 2*pollOf(o)); err != nil {
		return nil, err
	}
	reqs, i1 := e.rec.since(i0, name)
	if !exportVisible(reqs) {
		return nil, fmt.Errorf("%s: ready, but no export reached the bucket through the proxy (log: %s)", name, p.Log)
	}
	cpu0, err := cpuSeconds(p.Pid)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	raw0 := p.Metric("tailer_batch_bytes_total")
	mu.Lock()
	recording = true
	mu.Unlock()
	t0 := time.Now()
	pctx, cancel := context.WithTimeout(ctx, o.LagDuration)
	r.tx, err = g.Run(pctx, 0, rate)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%s: load: %w", name, err)
	}
	r.el = time.Since(t0)
	mu.Lock()
	recording = false
	mu.Unlock()
	// Wait for the last transaction to be confirmed (bounded: one never
	// confirmed is reported as unmatched, not hung on).
	var segs []confirmed
	deadline := time.Now().Add(2 * time.Minute)
	for len(r.commits) > 0 {
		reqs, _ = e.rec.since(i1, name)
		segs = confirmations(reqs, name)
		if covers(segs, r.commits[len(r.commits)-1].seq) || time.Now().After(deadline) || p.Exited() {
			break
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
	r.drain = time.Since(t0)
	cpu1, err := cpuSeconds(p.Pid)
	if err != nil {
		return nil, fmt.Errorf("%s: tailer exited during the phase (log: %s): %s", name, p.Log, tailFile(p.Log))
	}
	raw1 := p.Metric("tailer_batch_bytes_total")
	r.cpu = cpu1 - cpu0
	r.raw = -1
	if raw0 >= 0 && raw1 >= 0 {
		r.raw = raw1 - raw0
	}
	reqs, i2 := e.rec.since(i1, name)
	r.segs = confirmations(reqs, name)
	r.counts = countOf(within(reqs, t0, t0.Add(r.el)))
	r.segB = segmentBytes(within(reqs, t0, t0.Add(r.drain)))
	if idle > 0 {
		o.progress("    idle: %s without load", idle)
		t1 := time.Now()
		if err := sleep(ctx, idle); err != nil {
			return nil, err
		}
		reqs, _ := e.rec.since(i2, name)
		c := costOf("idle", countOf(reqs), time.Since(t1))
		c.Binary = b.Name
		r.idle = &c
	}
	return r, nil
}

// segmentBytes is the body bytes of the accepted segment uploads among
// reqs: single PUTs and multipart parts (a completion's body is the
// list of parts, not data).
func segmentBytes(reqs []Request) int64 {
	var n int64
	for _, x := range reqs {
		if _, kind := classify(x); kind == kindSegment && x.Method == http.MethodPut && x.Status/100 == 2 {
			n += max(x.ReqBytes, 0)
		}
	}
	return n
}

// summarize merges the runs of one phase for one binary.
func summarize(phase string, b Binary, rate int, runs []*lagRun) LagResult {
	l := LagResult{Phase: phase, Binary: b.Name, Rate: rate, Runs: len(runs), Counts: Counts{}}
	var all []float64
	for _, r := range runs {
		ls, un := lags(r.commits, r.segs)
		all = append(all, ls...)
		l.Unmatched += un
		l.Tx += r.tx
		l.Seconds += r.el.Seconds()
		l.DrainSeconds += r.drain.Seconds()
		for k, v := range r.counts {
			l.Counts[k] += v
		}
		l.CPUSeconds += r.cpu
		l.Segments += len(r.segs)
		l.SegmentBytes += r.segB
		if r.raw < 0 || l.RawBytes < 0 {
			l.RawBytes = -1
		} else {
			l.RawBytes += r.raw
		}
	}
	l.Matched, l.PUTs = len(all), l.Counts[opPUT]
	l.TxPerSec = ratio(float64(l.Tx), l.Seconds)
	l.PUTsPerSec = ratio(float64(l.PUTs), l.Seconds)
	l.P50, l.P99, l.Max = quantile(all, 0.50), quantile(all, 0.99), quantile(all, 1)
	return l
}

// alternate is the order of bs in round i: as given in even rounds,
// reversed in odd ones, so a drift in the machine's load does not
// favour one binary.
func alternate(bs []Binary, i int) []Binary {
	out := append([]Binary(nil), bs...)
	if i%2 == 1 {
		for a, z := 0, len(out)-1; a < z; a, z = a+1, z-1 {
			out[a], out[z] = out[z], out[a]
		}
	}
	return out
}

// runTailing runs the lag phases (steady at o.Rate, full speed) for every
// binary, alternated over o.LagRounds rounds, then the sweep (candidate
// only), and, unless only "lag" is asked, an idle window per binary and
// one restore from MinIO. Every tailer is a subprocess behind the
// recording proxy.
func runTailing(ctx context.Context, o Options, srv *minioserver.Server) (*TailingResult, error) {
	rec, err := startRecorder(srv.Endpoint, bucket)
	if err != nil {
		return nil, err
	}
	defer rec.Close()
	e := tailingEnv{srv: srv, rec: rec, env: s3Env(srv, rec.Endpoint)}
	bs := o.binaries()
	res := &TailingResult{Rounds: o.LagRounds, RunSeconds: o.LagDuration.Seconds(), Binaries: bs}
	withIdle := o.runs("tailing")
	restorePrefix := ""
	var idles []Cost // after the loaded phases' costs
	for _, ph := range []struct {
		name string
		rate int
	}{{phaseSteady, o.Rate}, {phaseFull, 0}} {
		runs := map[string][]*lagRun{}
		for i := 0; i < max(o.LagRounds, 1); i++ {
			for _, b := range alternate(bs, i) {
				name := fmt.Sprintf("%s-%s-%d", b.Name, strings.ReplaceAll(ph.name, " ", "-"), i+1)
				idle := time.Duration(0)
				if withIdle && ph.name == phaseSteady && i == 0 {
					idle = o.IdleDuration
				}
				o.progress("  %s, round %d: %s, %s of load", ph.name, i+1, b.Name, o.LagDuration)
				r, err := runLag(ctx, o, e, b, ph.rate, name, idle)
				if err != nil {
					return nil, fmt.Errorf("%s at %s: %w", b.Name, ph.name, err)
				}
				runs[b.Name] = append(runs[b.Name], r)
				if r.idle != nil {
					idles = append(idles, *r.idle)
				}
				if b.Name == "candidate" && restorePrefix == "" {
					restorePrefix = r.prefix
				}
			}
		}
		for _, b := range bs {
			l := summarize(ph.name, b, ph.rate, runs[b.Name])
			o.progress("  %s, %s: p50 %s p99 %s, %.1f PUT/s, %.3f CPU s/MB", ph.name, b.Name, secs(l.P50), secs(l.P99), l.PUTsPerSec, l.CPUPerMB())
			res.Lag = append(res.Lag, l)
			c := costOf("tailing at "+phaseLabel(ph.rate), l.Counts, time.Duration(l.Seconds*float64(time.Second)))
			c.Binary = b.Name
			res.Costs = append(res.Costs, c)
		}
	}
	res.Costs = append(res.Costs, idles...)
	for i, args := range o.Sweep {
		b := bs[0]
		b.Args = append(append([]string(nil), b.Args...), args...)
		setting := strings.Join(args, " ")
		o.progress("  sweep %d: candidate %s at %d tx/s, %s of load", i+1, setting, o.Rate, o.LagDuration)
		r, err := runLag(ctx, o, e, b, o.Rate, fmt.Sprintf("sweep-%d", i+1), 0)
		if err != nil {
			return nil, fmt.Errorf("sweep %q: %w", setting, err)
		}
		l := summarize(phaseSteady, b, o.Rate, []*lagRun{r})
		l.Setting = setting
		res.Sweep = append(res.Sweep, l)
	}
	if withIdle && restorePrefix != "" {
		if err := restoreCost(ctx, o, e, restorePrefix, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// restoreCost runs one `tailer restore` (the candidate) of prefix through
// the proxy and records its requests and download.
func restoreCost(ctx context.Context, o Options, e tailingEnv, prefix string, res *TailingResult) error {
	o.progress("  restore from MinIO (request count)")
	i0 := e.rec.mark()
	to := filepath.Join(o.Work, "restored-from-minio")
	defer os.RemoveAll(to)
	p, err := measure(ctx, e.env, o.Bin, "restore", "--replica", e.url(prefix), "--to", to, "--log-level", "warn", "--log-format", "text")
	if err != nil {
		return fmt.Errorf("restore from MinIO: %w", err)
	}
	reqs, _ := e.rec.since(i0, prefix)
	var got int64
	for _, x := range reqs {
		if op, _ := classify(x); op == opGET {
			got += max(x.RespBytes, 0)
		}
	}
	res.RestoreSeconds, res.RestoreBytes = p.Seconds, got
	c := Cost{Phase: "one restore", Binary: "candidate", Seconds: p.Seconds, Counts: countOf(reqs)}
	res.RestoreCost = &c
	return nil
}

func pollOf(o Options) time.Duration {
	if o.Poll > 0 {
		return o.Poll
	}
	return time.Second // run's default
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func costOf(phase string, c Counts, el time.Duration) Cost {
	ph := map[string]float64{}
	for _, k := range []string{opPUT, opGET, opLIST, opDELETE} {
		ph[k] = perHour(c[k], el)
	}
	return Cost{Phase: phase, Seconds: el.Seconds(), Counts: c, PerHour: ph}
}

func phaseLabel(rate int) string {
	if rate > 0 {
		return fmt.Sprintf("%d tx/s", rate)
	}
	return "full speed"
}
