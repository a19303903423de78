package retention

import (
	"fmt"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
)

// plan is what decide chose: the deletions in the order to perform them.
type plan struct {
	deletions   []Deletion
	oldest      Point
	keptObjects int
	keptBytes   int64
	// noneVerifies is set when the replica holds exports but none of
	// them verifies: nothing is deleted.
	noneVerifies bool
}

// exportRef is one export with the index of its generation.
type exportRef struct {
	gen int
	e   layout.Export
}

// decide chooses what to delete. It is pure (the LIST, the export times
// and whether an export verifies are its input) so that the rules can be
// tested without a replica, and it proves its own result before returning
// it: every export it keeps must reach exactly as far through the
// remaining segments as it did before.
//
// Only exports that verify count: every rule picks its base among them,
// so a damaged export never stands for the chain before it (restore falls
// back to the older export, which must still be there). An export that
// does not verify is never deleted because of that (it stays wherever the
// rules keep the exports around it) and it is not counted. ok is asked
// lazily, newest first, and only about the exports a rule needs to look
// at, because verifying means reading the whole export: with no damage,
// the newest export and each rule's base are all it asks about. When no
// export verifies, nothing is deleted.
func decide(gens []layout.Generation, times map[string]time.Time, ok func(layout.Generation, layout.Export) bool, p Policy, now time.Time) (plan, error) {
	var all []exportRef
	for gi, g := range gens {
		for _, e := range g.Exports {
			all = append(all, exportRef{gi, e})
		}
	}
	var pl plan
	if len(all) == 0 {
		// Nothing is restorable yet (the first base export may be on its
		// way): there is no point to keep, so nothing can be proven
		// unneeded either.
		pl.count(gens, nil)
		return pl, nil
	}
	memo := map[int]bool{}
	good := func(i int) bool {
		v, seen := memo[i]
		if !seen {
			v = ok(gens[all[i].gen], all[i].e)
			memo[i] = v
		}
		return v
	}
	// newestGood returns the newest export at or before index i that
	// verifies, and how many it skipped; -1 when none does.
	newestGood := func(i int) (int, int) {
		for j := i; j >= 0; j-- {
			if good(j) {
				return j, i - j
			}
		}
		return -1, i + 1
	}
	skipped := func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprintf("; %d newer export(s) that do not verify are not counted", n)
	}
	from, skip := newestGood(len(all) - 1)
	if from < 0 {
		pl.noneVerifies = true
		pl.count(gens, nil)
		return pl, nil
	}
	why := "the newest export that verifies (the newest restorable chain is always kept)" + skipped(skip)
	if p.KeepExports > 0 {
		i, n, bad := -1, 0, 0
		for j := len(all) - 1; j >= 0 && i < 0; j-- {
			switch {
			case !good(j):
				bad++
			case n+1 == p.KeepExports:
				i = j
			default:
				n++
			}
		}
		what := fmt.Sprintf("the %d newest exports that verify are kept%s", p.KeepExports, skipped(bad))
		if i < 0 {
			i, what = 0, fmt.Sprintf("the %d newest exports that verify are kept: fewer than %d verify, so all are", p.KeepExports, p.KeepExports)
		}
		if i < from {
			from, why = i, what
		}
	}
	if p.MaxAge > 0 {
		cutoff := now.Add(-p.MaxAge)
		// restore --time T starts from the newest export taken at or
		// before T; for T = cutoff that is the last one (in generation and
		// sequence order) not after it, and later moments need only later
		// exports. When it does not verify, restore falls back to the one
		// before it, so the base is the newest at or before the cutoff
		// that verifies. When no export is that old, all of them are in
		// the window.
		i, what := 0, fmt.Sprintf("every export is younger than %v", p.MaxAge)
		last := -1
		for j, x := range all {
			if !times[x.e.Key].After(cutoff) {
				last = j
			}
		}
		if last >= 0 {
			j, bad := newestGood(last)
			if j >= 0 {
				i, what = j, fmt.Sprintf("the newest export that verifies taken at or before %s (now - %v)%s", cutoff.UTC().Format(time.RFC3339), p.MaxAge, skipped(bad))
			} else {
				what = fmt.Sprintf("no export taken at or before %s (now - %v) verifies: all are kept", cutoff.UTC().Format(time.RFC3339), p.MaxAge)
			}
		}
		if i < from {
			from, why = i, what
		}
	}
	base := all[from]
	bg := gens[base.gen]
	pl.oldest = Point{Generation: bg.ID, ExportSeq: base.e.Seq, ExportTime: times[base.e.Key], Why: why}

	del := map[string]bool{}
	add := func(g layout.Generation, o layout.Object, k Kind, reason string) {
		pl.deletions = append(pl.deletions, Deletion{Key: o.Key, Size: o.Size, Kind: k, Generation: g.ID, Reason: reason})
		del[o.Key] = true
	}
	for gi, g := range gens {
		// An export's blob manifest goes right after it (a manifest
		// without its export is harmless; an export without its manifest
		// would look like lost blobs), and manifests left without export
		// (a deletion cut short) go with the exports older than the base.
		manifests := map[uint64]layout.Export{}
		for _, m := range g.BlobManifests {
			manifests[m.Seq] = m
		}
		export := func(e layout.Export, reason string) {
			add(g, e.Object, KindExport, reason)
			if m, ok := manifests[e.Seq]; ok {
				add(g, m.Object, KindManifest, reason)
				delete(manifests, e.Seq)
			}
		}
		orphans := func(below uint64, reason string) {
			for _, m := range g.BlobManifests {
				if _, left := manifests[m.Seq]; left && m.Seq < below && !hasExport(g, m.Seq) {
					add(g, m.Object, KindManifest, reason)
				}
			}
		}
		switch {
		case gi < base.gen:
			reason := fmt.Sprintf("generation %s is older than the oldest kept export (%s at %d)", g.ID, bg.ID, base.e.Seq)
			for _, e := range g.Exports {
				export(e, reason)
			}
			orphans(^uint64(0), reason)
			for _, s := range g.Segments {
				add(g, s.Object, KindSegment, reason)
			}
			if g.MetaKey != "" {
				add(g, layout.Object{Key: g.MetaKey}, KindGeneration, reason)
			}
		case gi == base.gen:
			for _, e := range g.Exports {
				if e.Seq < base.e.Seq {
					export(e, fmt.Sprintf("older than the oldest kept export at %d", base.e.Seq))
				}
			}
			orphans(base.e.Seq, fmt.Sprintf("the manifest of an export older than the oldest kept export at %d, which is gone", base.e.Seq))
			for _, s := range g.Segments {
				if s.Last <= base.e.Seq {
					add(g, s.Object, KindSegment, fmt.Sprintf("holds only batches at or before the oldest kept export at %d", base.e.Seq))
				}
			}
		}
	}
	if err := prove(gens, all[from:], del); err != nil {
		return plan{}, err
	}
	pl.count(gens, del)
	return pl, nil
}

// hasExport reports whether g holds the export at seq.
func hasExport(g layout.Generation, seq uint64) bool {
	for _, e := range g.Exports {
		if e.Seq == seq {
			return true
		}
	}
	return false
}

// count totals what stays.
func (pl *plan) count(gens []layout.Generation, del map[string]bool) {
	for _, g := range gens {
		for _, e := range g.Exports {
			if !del[e.Key] {
				pl.keptObjects++
				pl.keptBytes += e.Size
			}
		}
		for _, s := range g.Segments {
			if !del[s.Key] {
				pl.keptObjects++
				pl.keptBytes += s.Size
			}
		}
		for _, m := range g.BlobManifests {
			if !del[m.Key] {
				pl.keptObjects++
				pl.keptBytes += m.Size
			}
		}
		if g.MetaKey != "" && !del[g.MetaKey] {
			pl.keptObjects++
		}
	}
}

// prove checks that deleting del leaves every kept export, its
// generation.json and the whole reach of its chain in place. It guards
// the rules above against a mistake that would cost restorable data.
func prove(gens []layout.Generation, kept []exportRef, del map[string]bool) error {
	left := make([]layout.Generation, len(gens))
	for i, g := range gens {
		l := layout.Generation{ID: g.ID, MetaKey: g.MetaKey}
		if del[g.MetaKey] {
			l.MetaKey = ""
		}
		for _, e := range g.Exports {
			if !del[e.Key] {
				l.Exports = append(l.Exports, e)
			}
		}
		for _, s := range g.Segments {
			if !del[s.Key] {
				l.Segments = append(l.Segments, s)
			}
		}
		left[i] = l
	}
	for _, k := range kept {
		g, l := gens[k.gen], left[k.gen]
		if del[k.e.Key] {
			return fmt.Errorf("retention would delete the kept export %s; nothing was deleted (this is a bug)", k.e.Key)
		}
		if g.MetaKey != "" && l.MetaKey == "" {
			return fmt.Errorf("retention would delete %s of a kept generation; nothing was deleted (this is a bug)", g.MetaKey)
		}
		for _, m := range g.BlobManifests {
			if m.Seq == k.e.Seq && del[m.Key] {
				return fmt.Errorf("retention would delete %s, the blob manifest of the kept export %s; nothing was deleted (this is a bug)", m.Key, k.e.Key)
			}
		}
		if before, after := g.Reach(k.e.Seq), l.Reach(k.e.Seq); before != after {
			return fmt.Errorf("retention would shorten the chain from %s (reaching %d) to %d; nothing was deleted (this is a bug)", k.e.Key, before, after)
		}
	}
	return nil
}
