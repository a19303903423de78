// Package restore rebuilds a RocksDB store from a replica: it plans from
// one LIST, downloads the base export and the segments after it, verifies
// every checksum before anything reaches the target, bulk-loads the export
// (an SST file per family, ingested), proves the load equals the export's
// per-family digests, then replays WAL batches whole up to the target
// sequence number. The result opens in RocksDB (and Stalwart) with the
// same column families and merge operator as the source store. Package
// standby keeps such a store current with this package's one-shot pieces
// (pieces.go); restore does not import it.
package restore

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
)

// Target says which state to restore.
type Target struct {
	// Seq, when HasSeq, asks for exactly the state the primary had when
	// its latest sequence number was Seq. Otherwise the newest state.
	Seq    uint64
	HasSeq bool
	// Generation restricts the choice to one generation (optional): needed
	// only when sequence numbers repeat across generations because the
	// primary was restored.
	Generation string
	// Time, when HasTime, asks for the state after the last batch tailer
	// captured at or before it.
	Time    time.Time
	HasTime bool
	// Account and ChangeID, when HasChange, ask for the state right after
	// the batch that wrote that Stalwart change id of that account.
	Account   uint32
	ChangeID  uint64
	HasChange bool
	// Base, when HasBase, makes the restore start from the export at
	// sequence Base (at or before the target) instead of the newest one:
	// verify --deep replays from one export to the next and compares the
	// result with the later export's recorded digests.
	Base    uint64
	HasBase bool
}

// Plan is what a restore will read.
type Plan struct {
	Generation layout.Generation
	Export     layout.Export
	Segments   []layout.Segment
	Seq        uint64 // the sequence number the plan reaches (before batch-boundary adjustment)
	// Want is the sequence number asked for: Target.Seq, or the newest
	// batch the generation holds when no sequence was given.
	Want uint64
	// Short, when not empty, says why Seq falls short of Want: no segment
	// holds the sequence numbers after Seq (a hole in the chain). Run
	// refuses such a plan unless Options.AllowPartial.
	Short string
}

// MakePlan chooses the generation, base export and segments for t. The
// generation is the newest one holding the target (between its first
// export and its newest batch); without a sequence number, the newest
// generation with an export. A hole in its chain before the target does
// not make MakePlan look elsewhere: it returns the plan that reaches as
// far as the chain goes, with Short saying where and why it stops, so the
// caller either refuses or restores partially, knowingly.
func MakePlan(gens []layout.Generation, t Target) (Plan, error) {
	if len(gens) == 0 {
		return Plan{}, fmt.Errorf("the replica holds no generation: nothing to restore (is the URL right? has `tailer run` shipped anything yet?)")
	}
	cands := gens
	if t.Generation != "" {
		cands = nil
		for _, g := range gens {
			if g.ID == t.Generation {
				cands = []layout.Generation{g}
			}
		}
		if cands == nil {
			return Plan{}, fmt.Errorf("no generation %s in the replica; it has: %s", t.Generation, describe(gens))
		}
	}
	for i := len(cands) - 1; i >= 0; i-- {
		g := cands[i]
		if len(g.Exports) == 0 {
			continue
		}
		want := g.LastSeq()
		if t.HasSeq {
			if t.Seq < g.Exports[0].Seq || t.Seq > want {
				continue
			}
			want = t.Seq
		}
		return planIn(g, want, t)
	}
	if t.HasSeq {
		return Plan{}, outside(cands, t.Seq)
	}
	return Plan{}, fmt.Errorf("no generation has a finished export to restore from: %s", describe(cands))
}

// planIn plans the restore of generation g to want: from the newest
// export at or before it (or Target.Base), through the segments as far as
// they reach. Restore calls it again with damaged objects left out of g,
// for the same want.
func planIn(g layout.Generation, want uint64, t Target) (Plan, error) {
	base, ok := g.BaseExport(want)
	if !ok {
		return Plan{}, fmt.Errorf("generation %s has no usable export at or before sequence %d", g.ID, want)
	}
	if t.HasBase {
		i := slices.IndexFunc(g.Exports, func(e layout.Export) bool { return e.Seq == t.Base })
		if i < 0 || t.Base > want {
			return Plan{}, fmt.Errorf("generation %s has no export at sequence %d at or before the target %d", g.ID, t.Base, want)
		}
		base = g.Exports[i]
	}
	seq := min(want, g.Reach(base.Seq))
	chain, err := g.Chain(base.Seq, seq)
	if err != nil {
		return Plan{}, fmt.Errorf("plan the chain of generation %s: %w", g.ID, err) // cannot happen: seq is reachable
	}
	p := Plan{Generation: g, Export: base, Segments: chain, Seq: seq, Want: want}
	if seq < want {
		p.Short = holeAfter(g, seq, want)
	}
	return p, nil
}

// holeAfter describes the hole that starts right after seq.
func holeAfter(g layout.Generation, seq, want uint64) string {
	for _, h := range g.Holes() {
		if h.First == seq+1 {
			next := "no later segment"
			if h.After != "" {
				next = "the next segment is " + h.After
			}
			return fmt.Sprintf("no segment of generation %s holds sequence numbers %d..%d (missing after %s; %s)", g.ID, h.First, h.Last, h.Before, next)
		}
	}
	return fmt.Sprintf("no segment of generation %s holds sequence numbers %d..%d", g.ID, seq+1, want)
}

// outside explains a sequence number no generation holds: before the
// oldest export, after the newest batch, or between two generations.
func outside(gens []layout.Generation, seq uint64) error {
	var oldest, newest layout.Generation
	var lo, hi uint64
	found := false
	for _, g := range gens {
		if len(g.Exports) == 0 {
			continue
		}
		if !found || g.Exports[0].Seq < lo {
			lo, oldest = g.Exports[0].Seq, g
		}
		if !found || g.LastSeq() > hi {
			hi, newest = g.LastSeq(), g
		}
		found = true
	}
	ranges := describe(gens)
	switch {
	case !found:
		return fmt.Errorf("sequence %d is not restorable: no generation has a finished export (%s)", seq, ranges)
	case seq < lo:
		return fmt.Errorf("sequence %d is before the oldest export the replica holds (seq %d, generation %s): choose a sequence in a restorable range: %s", seq, lo, oldest.ID, ranges)
	case seq > hi:
		return fmt.Errorf("sequence %d is after the newest batch the replica holds (seq %d, generation %s): tailer has not shipped it (yet); choose a sequence in a restorable range: %s", seq, hi, newest.ID, ranges)
	}
	return fmt.Errorf("sequence %d falls between generations (a WAL gap or a replaced store): choose a sequence in a restorable range: %s", seq, ranges)
}

// describe lists each generation's restorable range for error messages.
func describe(gens []layout.Generation) string {
	var parts []string
	for _, g := range gens {
		newest, ok := g.NewestRestorable()
		if !ok {
			parts = append(parts, fmt.Sprintf("%s (no export)", g.ID))
			continue
		}
		part := fmt.Sprintf("%s: %d..%d", g.ID, g.Exports[0].Seq, newest)
		if last := g.LastSeq(); last > newest {
			part += fmt.Sprintf(" (batches up to %d lie beyond a hole)", last)
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}
