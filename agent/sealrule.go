package agent

import (
	"time"

	"github.com/tailer-backup/tailer/segment"
)

// pending is what was read from the WAL and not yet handed to the
// sealer: the batches of the next segment, in order.
type pending struct {
	batches  []segment.Batch
	bytes    int
	oldest   time.Time        // when the first batch was read
	families []segment.Family // the family table when the first batch was read
	gen      *generation      // the generation they belong to
}

// add appends a batch read at now.
func (p *pending) add(b segment.Batch, now time.Time, gen *generation, families []segment.Family) {
	if len(p.batches) == 0 {
		p.oldest, p.gen, p.families = now, gen, families
	}
	p.batches = append(p.batches, b)
	p.bytes += len(b.Data)
}

// sealRule decides when pending batches become a segment. A segment is
// one PUT per replica, so sealing is a trade between latency (how long a
// commit waits in memory before it is durable in the spool) and requests:
//   - at maxBytes raw bytes, at once (a burst is never held in memory
//     whole, whatever the other limits say);
//   - otherwise when the oldest batch is maxDelay old, but not sooner
//     than minInterval after the previous segment was cut.
//
// So an isolated commit is sealed maxDelay after it was read, a steady
// load makes at most one segment per max(maxDelay, minInterval) plus
// those the size limit cuts, and an idle store makes none.
type sealRule struct {
	maxDelay, minInterval time.Duration
	maxBytes              int
}

// due reports whether p must be sealed at now, given that the previous
// segment was cut at lastCut (zero: none yet); when not, wait is how long
// until it must be (0: nothing pending, no deadline).
func (r sealRule) due(p *pending, lastCut, now time.Time) (bool, time.Duration) {
	if len(p.batches) == 0 {
		return false, 0
	}
	if p.bytes >= r.maxBytes {
		return true, 0
	}
	deadline := p.oldest.Add(r.maxDelay)
	if !lastCut.IsZero() {
		if d := lastCut.Add(r.minInterval); d.After(deadline) {
			deadline = d
		}
	}
	if !now.Before(deadline) {
		return true, 0
	}
	return false, deadline.Sub(now)
}
