package bench

import (
	"context"
	"errors"
	"fmt"
	"github.com/tailer-backup/tailer/internal/minioserver"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/uploader"
)

// LagResult is the RPO measured in one load phase: for every transaction
// committed in the phase, the time from its commit on the primary to the
// bucket confirming the segment that holds it.
type LagResult struct {
	Phase     string  `json:"phase"`
	Rate      int     `json:"rate"` // asked tx/s; 0 is full speed
	Seconds   float64 `json:"seconds"`
	Tx        int     `json:"tx"`
	TxPerSec  float64 `json:"tx_per_sec"`
	Matched   int     `json:"matched"`   // transactions found in a confirmed segment
	Unmatched int     `json:"unmatched"` // committed but never seen confirmed (should be 0)
	Segments  int     `json:"segments"`  // segments confirmed during the phase
	P50       float64 `json:"p50_s"`
	P99       float64 `json:"p99_s"`
	Max       float64 `json:"max_s"`
}

// Cost is the S3 requests made during a phase and, for tailing phases,
// extrapolated to one hour.
type Cost struct {
	Phase   string             `json:"phase"`
	Seconds float64            `json:"seconds"`
	Counts  Counts             `json:"counts"`
	PerHour map[string]float64 `json:"per_hour,omitempty"`
}

// TailingResult gathers what one tailer run against MinIO measured.
type TailingResult struct {
	Lag         []LagResult `json:"lag"`
	Costs       []Cost      `json:"cost"`
	RestoreCost Cost        `json:"restore_cost"`
	// RestoreSeconds is that restore's wall time from MinIO (the store is
	// the small one the lag phases wrote).
	RestoreSeconds float64 `json:"restore_s"`
	RestoreBytes   int64   `json:"restore_downloaded_bytes"`
}

type commit struct {
	seq uint64 // the transaction's last sequence number
	t   time.Time
}

// runTailing runs tailer in-process against MinIO while the load
// generator writes a Stalwart-like primary: a steady phase at o.Rate, a
// full-speed phase, an idle phase, then one restore of what it shipped.
// The agent is the production code path; only its HTTP client is the
// counting one, which is how commits are matched to confirmed segments.
func runTailing(ctx context.Context, o Options, srv *minioserver.Server) (*TailingResult, error) {
	dir := filepath.Join(o.Work, "tailing")
	var mu sync.Mutex
	var commits []commit
	g, err := loadgen.Open(loadgen.Config{
		Dir: filepath.Join(dir, "primary"), Seed: o.Seed, MaxTotalWALSize: -1,
		AfterTx: func(tx loadgen.Tx) error {
			now := time.Now()
			mu.Lock()
			commits = append(commits, commit{tx.LastSeq, now})
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
	ct := newCountingTransport()
	url := srv.URL(bucket, "tailing")
	r, err := uploader.Open(ctx, url, uploader.Options{HTTPClient: &http.Client{Transport: ct}, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
	if err != nil {
		return nil, err
	}
	a, err := agent.New(agent.Config{DB: g.Dir(), Scratch: filepath.Join(dir, "scratch"), Replica: r, Poll: o.Poll,
		Registry: prometheus.NewRegistry(), Log: o.Log})
	if err != nil {
		return nil, err
	}
	actx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(actx) }()
	stopped := false
	stopAgent := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stop()
		return <-runErr
	}
	defer stopAgent()

	if err := waitFor(ctx, 2*time.Minute, runErr, ct.exportConfirmed); err != nil {
		return nil, fmt.Errorf("tailer's first export never reached the bucket: %w", err)
	}
	// Let the first polls after the export settle before timing anything.
	time.Sleep(2 * pollOf(o))

	res := &TailingResult{}
	for _, ph := range []struct {
		name string
		rate int
	}{{"steady", o.Rate}, {"full speed", 0}} {
		o.progress("  lag at %s: %s of load", ph.name, o.LagDuration)
		mu.Lock()
		i0 := len(commits)
		mu.Unlock()
		c0 := ct.snapshot()
		t0 := time.Now()
		pctx, cancel := context.WithTimeout(ctx, o.LagDuration)
		n, err := g.Run(pctx, 0, ph.rate)
		cancel()
		if err != nil {
			return nil, err
		}
		el := time.Since(t0)
		c1 := ct.snapshot()
		mu.Lock()
		phase := append([]commit(nil), commits[i0:]...)
		mu.Unlock()
		if len(phase) > 0 {
			last := phase[len(phase)-1].seq
			// Wait for the phase's last batch to be confirmed (bounded: a
			// batch never confirmed is reported as unmatched, not hung on).
			_ = waitFor(ctx, 2*time.Minute, runErr, func() bool { return ct.covers(last) })
		}
		lr := lagOf(phase, ct.confirmedSegments(), t0)
		lr.Phase, lr.Rate, lr.Seconds, lr.Tx, lr.TxPerSec = ph.name, ph.rate, el.Seconds(), n, float64(n)/el.Seconds()
		res.Lag = append(res.Lag, lr)
		res.Costs = append(res.Costs, costOf("tailing at "+ph.name, c1.Sub(c0), el))
	}
	o.progress("  idle: %s without load", o.IdleDuration)
	c0 := ct.snapshot()
	t0 := time.Now()
	select {
	case <-time.After(o.IdleDuration):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res.Costs = append(res.Costs, costOf("idle", ct.snapshot().Sub(c0), time.Since(t0)))
	if err := stopAgent(); err != nil {
		return nil, fmt.Errorf("tailer run: %w", err)
	}

	o.progress("  restore from MinIO (request count)")
	rt := newCountingTransport()
	r2, err := uploader.Open(ctx, url, uploader.Options{HTTPClient: &http.Client{Transport: rt}, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	rr, err := restore.Run(ctx, restore.Options{Replica: r2, To: filepath.Join(dir, "restored"), Log: o.Log})
	if err != nil {
		return nil, fmt.Errorf("restore from MinIO: %w", err)
	}
	el := time.Since(t0)
	res.RestoreSeconds, res.RestoreBytes = el.Seconds(), rr.Downloaded
	res.RestoreCost = Cost{Phase: "one restore", Seconds: el.Seconds(), Counts: rt.snapshot()}
	if !o.Keep {
		os.RemoveAll(dir)
	}
	return res, nil
}

func pollOf(o Options) time.Duration {
	if o.Poll > 0 {
		return o.Poll
	}
	return time.Second // agent's default
}

// waitFor polls cond until it holds, the agent stops, or limit passes.
func waitFor(ctx context.Context, limit time.Duration, runErr <-chan error, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		select {
		case err := <-runErr:
			return fmt.Errorf("tailer stopped: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
	}
	return nil
}

// lagOf matches each commit with the first confirmation of a segment
// holding its batch. Segments are named by the sequence range they hold,
// so the match is exact.
func lagOf(phase []commit, segs []confirmed, since time.Time) LagResult {
	sort.Slice(segs, func(i, j int) bool {
		if segs[i].First != segs[j].First {
			return segs[i].First < segs[j].First
		}
		return segs[i].T.Before(segs[j].T)
	})
	var lr LagResult
	for _, s := range segs {
		if !s.T.Before(since) {
			lr.Segments++
		}
	}
	lags := make([]float64, 0, len(phase))
	for _, c := range phase {
		i := sort.Search(len(segs), func(i int) bool { return segs[i].First > c.seq }) - 1
		// Among segments starting at the same sequence (a retried upload),
		// the first confirmation counts.
		for i > 0 && segs[i-1].First == segs[i].First {
			i--
		}
		if i < 0 || segs[i].Last < c.seq {
			lr.Unmatched++
			continue
		}
		lags = append(lags, segs[i].T.Sub(c.t).Seconds())
	}
	lr.Matched = len(lags)
	lr.P50, lr.P99, lr.Max = quantile(lags, 0.50), quantile(lags, 0.99), quantile(lags, 1)
	return lr
}

// quantile is the nearest-rank q-quantile of xs (sorted in place).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return -1 // JSON has no NaN; shown as n/a
	}
	sort.Float64s(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

func costOf(phase string, c Counts, el time.Duration) Cost {
	ph := map[string]float64{}
	for _, k := range []string{opPUT, opGET, opLIST, opDELETE} {
		ph[k] = float64(c[k]) * float64(time.Hour) / float64(el)
	}
	return Cost{Phase: phase, Seconds: el.Seconds(), Counts: c, PerHour: ph}
}
