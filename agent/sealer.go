package agent

import (
	"context"
	"errors"
	"time"

	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
)

// sealsInFlight bounds the segments handed to the sealer and not yet in
// the spool: one being compressed and committed, one waiting. Reading
// the WAL goes on meanwhile; when both slots are taken, the reader waits
// for the older to finish (memory stays bounded by about
// sealsInFlight+1 segments).
const sealsInFlight = 2

// sealJob is a segment to write: batches of one generation, in order.
type sealJob struct {
	epoch    uint64
	gen      *generation
	families []segment.Family
	batches  []segment.Batch
	last     uint64
}

// sealResult is what became of a job.
type sealResult struct {
	epoch uint64
	last  uint64
	err   error
}

// errSealSkipped: an earlier segment of the same epoch failed, so this
// one was not written (the spool never holds a segment after a hole).
var errSealSkipped = errors.New("not sealed: an earlier segment failed")

// sealer writes segments into the spool on a goroutine of its own, one
// at a time, in the order they are handed over, so spool entries (and so
// uploads) follow sequence numbers. It owns nothing of the tailing state:
// the Run goroutine hands it jobs and learns, from the results in the
// same order, what is durably sealed (Agent.sealed).
type sealer struct {
	jobs     chan sealJob
	results  chan sealResult
	done     chan struct{}
	inFlight int    // Run goroutine only
	epoch    uint64 // Run goroutine only: bumped by a failed seal
}

// startSealer starts the sealing goroutine; seal writes one job. Jobs
// run under ctx (the uploads' context: it outlives SIGTERM, so what was
// read is sealed before the spool drains, and ends when a lease is lost).
func startSealer(ctx context.Context, seal func(context.Context, sealJob) error) *sealer {
	s := &sealer{jobs: make(chan sealJob, sealsInFlight-1), results: make(chan sealResult, sealsInFlight), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		failed, hasFailed := uint64(0), false
		for j := range s.jobs {
			r := sealResult{epoch: j.epoch, last: j.last}
			switch {
			case hasFailed && failed == j.epoch:
				r.err = errSealSkipped
			default:
				if r.err = seal(ctx, j); r.err != nil {
					failed, hasFailed = j.epoch, true
				}
			}
			s.results <- r
		}
	}()
	return s
}

// cut hands the pending batches to the sealer as one segment, first
// waiting for a slot. It reports false if waiting for the slot found
// that an earlier seal failed: the caller's reading position was rewound
// and the batches it was handing over are dropped with the rest.
func (a *Agent) cut() bool {
	p := &a.pend
	if len(p.batches) == 0 {
		return true
	}
	epoch := a.sealer.epoch
	for a.sealer.inFlight >= sealsInFlight {
		a.sealed(<-a.sealer.results)
	}
	if a.sealer.epoch != epoch {
		return false
	}
	lastH, _ := wbatch.ReadHeader(p.batches[len(p.batches)-1].Data) // read once already
	j := sealJob{epoch: epoch, gen: p.gen, families: p.families, batches: p.batches, last: lastH.LastSeq()}
	a.sealer.inFlight++
	a.sealer.jobs <- j // never blocks: inFlight < sealsInFlight
	a.queued = j.last
	a.lastCut = a.cfg.Now()
	a.pend = pending{}
	return true
}

// sealed applies a result, on the Run goroutine. A segment in the spool
// advances lastShipped and lets the WAL pins go up to it. A failed one
// rewinds: what was queued after it is not written (errSealSkipped), and
// reading starts again after the last sealed batch, from the WAL pins,
// which still hold everything after lastShipped.
func (a *Agent) sealed(r sealResult) {
	a.sealer.inFlight--
	if r.epoch != a.sealer.epoch {
		return // queued behind a failure and skipped: already rewound
	}
	if r.err != nil {
		a.m.pollErrors.Inc()
		a.log.Error("sealing a segment failed; reading again from the last sealed batch", "last_sealed_seq", a.lastShipped, "err", r.err)
		a.sealer.epoch++
		a.rewind(a.lastShipped)
		return
	}
	a.lastShipped = r.last
	a.m.lastShipped.Set(float64(r.last))
	a.releasePins()
}

// rewind forgets what was read after seq (pending batches) and reads
// from the WAL again after it.
func (a *Agent) rewind(seq uint64) {
	a.pend = pending{}
	a.queued = seq
	a.cont.reset(seq + 1)
	a.walCur = walCursorZero
	a.rewound = true
	a.wake.at(0, 0)
}

// flush seals what is pending, at once, and waits until every segment
// handed over is in the spool (or failed): before a new generation, a
// reopened secondary, and at shutdown.
func (a *Agent) flush() {
	a.cut()
	for a.sealer.inFlight > 0 {
		a.sealed(<-a.sealer.results)
	}
}

// stopSealer waits for the segments in flight and ends the goroutine.
func (a *Agent) stopSealer() {
	for a.sealer.inFlight > 0 {
		a.sealed(<-a.sealer.results)
	}
	close(a.sealer.jobs)
	<-a.sealer.done
}

// maybeCut applies the sealing rule; it returns how long until it must
// be applied again (0: nothing pending).
func (a *Agent) maybeCut() time.Duration {
	due, wait := a.rule.due(&a.pend, a.lastCut, a.cfg.Now())
	if due {
		a.cut()
		return 0
	}
	return wait
}
