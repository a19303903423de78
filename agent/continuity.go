package agent

import (
	"fmt"

	"github.com/tailer-backup/tailer/internal/wbatch"
)

// continuity decides, batch by batch, whether what the WAL hands over
// continues what was read before: tailing must never skip a sequence
// number silently (a gap starts a new generation) nor ship one twice. It
// is pure (no I/O, no clock), so every branch is tested by a table
// (continuity_test.go); tail feeds it the headers it reads and the
// outcome of each backstop poll.
type continuity struct {
	// want is the first sequence number not read yet: every batch up to
	// want-1 is sealed, being sealed, or waiting to be.
	want uint64
	// emptyPolls counts consecutive backstop polls that found no WAL
	// batch although the store is past want.
	emptyPolls int
}

// verdict is continuity's answer for one batch.
type verdict int

const (
	take     verdict = iota // the next batch: append it
	skip                    // already read, or a batch of no records
	gap                     // it starts after want: the batches between are gone
	straddle                // it starts before want and ends after it: the WAL and what was shipped disagree
)

// emptyPollsForGap is how many consecutive polls must find no WAL batch
// although the store moved on before that counts as a gap: for a moment
// the primary may be switching WAL files.
const emptyPollsForGap = 3

// batch judges the batch with header h and, when it is taken, moves want
// past it.
func (c *continuity) batch(h wbatch.Header) verdict {
	if h.Count == 0 {
		return skip // consumes no sequence number, changes nothing
	}
	switch last := h.LastSeq(); {
	case last < c.want:
		return skip
	case h.Seq > c.want:
		return gap
	case h.Seq < c.want:
		return straddle
	default:
		c.want = last + 1
		return take
	}
}

// poll judges a backstop poll that saw seen WAL batches (shipped or not)
// while the store's newest sequence number was latest: it reports a gap
// when emptyPollsForGap polls in a row saw none although the store is
// past what was read (no WAL file holds a batch at or after want any
// more: the primary deleted it). A poll that saw a batch, or a store that
// did not move, resets the count.
func (c *continuity) poll(seen int, latest uint64) bool {
	if seen > 0 || c.want > latest {
		c.emptyPolls = 0
		return false
	}
	c.emptyPolls++
	return c.emptyPolls >= emptyPollsForGap
}

// reset restarts the decision at want (a new generation, or a failed
// seal that makes the agent re-read from the last sealed batch).
func (c *continuity) reset(want uint64) { *c = continuity{want: want} }

// gapError reports that the WAL no longer holds the batch wanted.
type gapError struct{ want, got uint64 }

func (e gapError) Error() string {
	if e.got == 0 {
		return fmt.Sprintf("WAL gap: wanted the batch at sequence %d, the WAL holds no batch at or after it (the primary flushed and deleted it)", e.want)
	}
	return fmt.Sprintf("WAL gap: wanted the batch at sequence %d, the oldest WAL batch available starts at %d (the primary deleted the WAL file in between)", e.want, e.got)
}

// straddleError reports a batch that overlaps the last one read.
type straddleError struct {
	first, last, read uint64
}

func (e straddleError) Error() string {
	return fmt.Sprintf("WAL batch %d..%d straddles the last shipped sequence %d", e.first, e.last, e.read)
}
