package standby

import (
	"github.com/prometheus/client_golang/prometheus"
)

// followMetrics are what an operator alerts on for a warm standby: how
// far it stands (sequence and the capture time of the last batch applied)
// and whether it still reaches the replica. now - last capture time is the
// standby's lag while the primary is being written; while the primary is
// idle it grows too, which the last successful step tells apart.
type followMetrics struct {
	seq, captured, lastStep prometheus.Gauge
	batches, rebuilds       prometheus.Counter
	stepErrors              prometheus.Counter
}

// newFollowMetrics registers the follower's metrics on reg; nil reg gives
// metrics that are updated but exported nowhere.
func newFollowMetrics(reg prometheus.Registerer) *followMetrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &followMetrics{
		seq:        g("tailer_follow_seq", "Source sequence number the standby equals."),
		captured:   g("tailer_follow_last_capture_timestamp_seconds", "When tailer captured the last batch applied to the standby (Unix time): time() minus this is the standby's lag while the primary is written."),
		lastStep:   g("tailer_follow_last_success_timestamp_seconds", "When the follower last listed the replica and applied what it found without error (Unix time)."),
		batches:    c("tailer_follow_batches_applied_total", "Source batches applied to the standby."),
		rebuilds:   c("tailer_follow_rebuilds_total", "Standby stores built from an export (the first restore, new generations, holes)."),
		stepErrors: c("tailer_follow_step_errors_total", "Follow steps that failed (replica unreachable, damaged objects); retried every interval."),
	}
	if reg != nil {
		reg.MustRegister(m.seq, m.captured, m.lastStep, m.batches, m.rebuilds, m.stepErrors)
	}
	return m
}

// observe records a status the follower reached.
func (m *followMetrics) observe(prev, now FollowStatus) {
	m.seq.Set(float64(now.Seq))
	if now.CapturedUnixMs > 0 {
		m.captured.Set(float64(now.CapturedUnixMs) / 1000)
	}
	if d := now.Batches - prev.Batches; d > 0 {
		m.batches.Add(float64(d))
	}
	if d := now.Rebuilds - prev.Rebuilds; d > 0 {
		m.rebuilds.Add(float64(d))
	}
}
