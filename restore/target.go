package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tailer-backup/tailer/changelog"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/safepath"
	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// resolver turns a --time or --account/--change-id target into a
// generation and a sequence number. It reads object framing in place
// (header and trailer: capture times, change-id labels, per-account change
// ids) and downloads at most the one segment that holds the stopping
// batch, which the restore then reuses.
type resolver struct {
	ctx  context.Context
	r    uploader.Replica
	work string
	got  map[string]string // key -> downloaded path, reused by fetch
}

// resolved is a concrete target and why it was chosen.
type resolved struct {
	generation string
	seq        uint64
	why        string
}

func (rv *resolver) framing(key string, size int64) (segment.Header, segment.Trailer, error) {
	return catalog.ReadFraming(rv.ctx, rv.r, key, size)
}

// download fetches one segment whole (verified) into the work dir.
func (rv *resolver) download(s layout.Segment) (*segment.Reader, *os.File, error) {
	path, err := safepath.Join(rv.work, s.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("restore work dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), owned.DirMode); err != nil {
		return nil, nil, err
	}
	n, err := uploader.Download(rv.ctx, rv.r, s.Key, path)
	if err != nil {
		return nil, nil, fmt.Errorf("download %s: %w", s.Key, err)
	}
	rv.got[s.Key] = path
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	rd, err := segment.Open(f, n, s.Key)
	if err == nil {
		err = rd.Verify()
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return rd, f, nil
}

// byTime resolves "the state after the last batch captured at or before
// t". The base is the newest export taken at or before t (exports carry
// their snapshot time); segments are binary-searched by their first
// capture time, assuming capture times grow with sequence numbers, as
// they do under one tailer's clock.
func (rv *resolver) byTime(gens []layout.Generation, t time.Time) (resolved, error) {
	tms := t.UnixMilli()
	var oldest time.Time
	for i := len(gens) - 1; i >= 0; i-- {
		g := gens[i]
		for j := len(g.Exports) - 1; j >= 0; j-- {
			e := g.Exports[j]
			h, _, err := rv.framing(e.Key, e.Size)
			if err != nil {
				return resolved{}, err
			}
			if oldest.IsZero() || h.Created.Before(oldest) {
				oldest = h.Created
			}
			if h.Created.UnixMilli() > tms {
				continue
			}
			return rv.timeInGeneration(g, e, tms)
		}
	}
	if oldest.IsZero() {
		return resolved{}, fmt.Errorf("the replica holds no export to restore from")
	}
	return resolved{}, setting.Bad("Time", "time", t.UTC().Format(time.RFC3339), fmt.Sprintf("is before the oldest restorable point (%s, the oldest export): choose a later time", oldest.UTC().Format(time.RFC3339)))
}

func (rv *resolver) timeInGeneration(g layout.Generation, e layout.Export, tms int64) (resolved, error) {
	chain := segmentsAfter(g, e.Seq)
	// Find the last segment whose first batch was captured at or before t.
	var ferr error
	minCap := func(i int) int64 {
		_, tr, err := rv.framing(chain[i].Key, chain[i].Size)
		if err != nil && ferr == nil {
			ferr = err
		}
		return tr.MinCaptureUnixMs
	}
	n := sort.Search(len(chain), func(i int) bool { return minCap(i) > tms })
	if ferr != nil {
		return resolved{}, ferr
	}
	when := time.UnixMilli(tms).UTC().Format(time.RFC3339Nano)
	// missing reports a hole right after seq (the batches up to the next
	// segment, or up to the generation's newest batch): some of them may
	// have been captured by t, so the target lies in the hole, and MakePlan
	// then refuses it (or restores up to seq with AllowPartial).
	missing := func(seq uint64) (resolved, bool) {
		next := g.LastSeq() + 1
		if n < len(chain) {
			next = chain[n].First
		}
		if next <= seq+1 {
			return resolved{}, false
		}
		why := fmt.Sprintf("the last batch captured at or before %s may be among the missing batches %d..%d", when, seq+1, next-1)
		return resolved{g.ID, seq + 1, why}, true
	}
	if n == 0 {
		if res, ok := missing(e.Seq); ok {
			return res, nil
		}
		return resolved{g.ID, e.Seq, fmt.Sprintf("no batch after the export at %d was captured by %s; restoring the export", e.Seq, when)}, nil
	}
	s := chain[n-1]
	_, tr, err := rv.framing(s.Key, s.Size)
	if err != nil {
		return resolved{}, err
	}
	if tr.MaxCaptureUnixMs <= tms {
		if res, ok := missing(s.Last); ok {
			return res, nil
		}
		why := fmt.Sprintf("the last batch captured at or before %s ends at %d", when, s.Last)
		if n == len(chain) {
			why = fmt.Sprintf("%s is at or after the newest batch of generation %s (captured %s); restoring its newest state", when, g.ID, time.UnixMilli(tr.MaxCaptureUnixMs).UTC().Format(time.RFC3339Nano))
		}
		return resolved{g.ID, s.Last, why}, nil
	}
	rd, f, err := rv.download(s)
	if err != nil {
		return resolved{}, err
	}
	defer f.Close()
	seq := s.First - 1
	var captured int64
	for {
		b, err := rd.NextBatch()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return resolved{}, err
		}
		if b.CaptureUnixMs > tms {
			break
		}
		seq, captured = b.Seq+uint64(b.Count())-1, b.CaptureUnixMs
	}
	if seq < e.Seq {
		seq = e.Seq
	}
	why := fmt.Sprintf("the last batch captured at or before %s ends at %d (captured %s)", when, seq, time.UnixMilli(captured).UTC().Format(time.RFC3339Nano))
	return resolved{g.ID, seq, why}, nil
}

// byChange resolves "the state right after the batch that wrote change id
// c of account a". The base is the newest export whose recorded newest
// change id for a is below c; the segment holding c is found from the
// segments' change-id labels and then downloaded to find the batch.
func (rv *resolver) byChange(gens []layout.Generation, account uint32, c uint64) (resolved, error) {
	var known []uint64 // change ids of the account seen, for the error
	for i := len(gens) - 1; i >= 0; i-- {
		g := gens[i]
		for j := len(g.Exports) - 1; j >= 0; j-- {
			e := g.Exports[j]
			_, tr, err := rv.framing(e.Key, e.Size)
			if err != nil {
				return resolved{}, err
			}
			if have, ok := tr.AccountChanges[account]; ok && have >= c {
				known = append(known, have)
				continue // the change is inside (or before) this export: use an older base
			}
			res, seen, err := rv.changeInGeneration(g, e, account, c)
			known = append(known, seen...)
			if err != nil || res.generation != "" {
				return res, err
			}
			break // older exports of this generation hold no other segments
		}
	}
	if len(known) == 0 {
		return resolved{}, fmt.Errorf("change %d of account %d is not in the replica: the replica holds no change of that account (check the account id with %w)",
			c, account, &setting.Error{Key: "ListAccounts", Name: "a listing of the replica's accounts"})
	}
	return resolved{}, fmt.Errorf("change %d of account %d is not in the replica%s", c, account, nearest(known, c))
}

// changeInGeneration scans the chain after export e for change c of the
// account. It returns the account's change ids it learnt of (label bounds,
// and the exact ids of a segment it searched) for the error message.
func (rv *resolver) changeInGeneration(g layout.Generation, e layout.Export, account uint32, c uint64) (resolved, []uint64, error) {
	chain := segmentsAfter(g, e.Seq)
	var seen []uint64
	for _, s := range chain {
		_, tr, err := rv.framing(s.Key, s.Size)
		if err != nil {
			return resolved{}, seen, err
		}
		hit, past := false, false
		for _, l := range tr.Labels {
			if l.Account != account {
				continue
			}
			seen = append(seen, l.MinChange, l.MaxChange)
			hit = hit || l.MinChange <= c && c <= l.MaxChange
			past = past || l.MinChange > c
		}
		if hit {
			res, ids, err := rv.findChange(g, s, account, c)
			if err != nil || res.generation != "" {
				return res, seen, err
			}
			seen = append(seen, ids...)
		}
		if hit || past {
			break // change ids only grow with sequence numbers: c is not here
		}
	}
	return resolved{}, seen, nil
}

// findChange downloads the segment and finds the batch writing the change;
// if none does, it returns the account's change ids it holds.
func (rv *resolver) findChange(g layout.Generation, s layout.Segment, account uint32, c uint64) (resolved, []uint64, error) {
	rd, f, err := rv.download(s)
	if err != nil {
		return resolved{}, nil, err
	}
	defer f.Close()
	lID, _ := changelog.FamilyID(rd.Header().Families)
	var ids []uint64
	for {
		b, err := rd.NextBatch()
		if errors.Is(err, io.EOF) {
			return resolved{}, ids, nil
		}
		if err != nil {
			return resolved{}, nil, err
		}
		changes, _, _, err := changelog.Scan(b, lID)
		if err != nil {
			return resolved{}, nil, fmt.Errorf("%s: %w", s.Key, err)
		}
		for _, ch := range changes {
			if ch.Account != account || ch.Truncation {
				continue
			}
			if ch.ChangeID == c {
				why := fmt.Sprintf("change %d of account %d (%s) was written by the batch %d..%d, captured %s", c, account, ch.Collection, ch.Seq, ch.LastSeq, time.UnixMilli(ch.CaptureUnixMs).UTC().Format(time.RFC3339Nano))
				return resolved{g.ID, ch.LastSeq, why}, nil, nil
			}
			ids = append(ids, ch.ChangeID)
		}
	}
}

// nearest describes the account's change ids the replica does hold.
func nearest(known []uint64, c uint64) string {
	var below, above uint64
	var hasBelow, hasAbove bool
	for _, k := range known {
		if k < c && (!hasBelow || k > below) {
			below, hasBelow = k, true
		}
		if k > c && (!hasAbove || k < above) {
			above, hasAbove = k, true
		}
	}
	out := "; nearest ids it holds:"
	if hasBelow {
		out += fmt.Sprintf(" %d (before)", below)
	}
	if hasAbove {
		out += fmt.Sprintf(" %d (after)", above)
	}
	if !hasBelow && !hasAbove {
		out += " none near it"
	}
	if hasBelow && !hasAbove {
		out += "; newer changes are not shipped yet, or were never written"
	}
	return out
}

// segmentsAfter lists the segments after the state at from up to the
// generation's newest batch, in order, preferring the widest of
// overlapping ones like Generation.Chain but stepping over holes, so a
// time or change id beyond a hole resolves to where it really is and
// MakePlan then names the hole, instead of quietly resolving to the last
// point before it.
func segmentsAfter(g layout.Generation, from uint64) []layout.Segment {
	var out []layout.Segment
	next := from + 1
	for {
		var best *layout.Segment
		for i := range g.Segments {
			s := &g.Segments[i]
			if s.Last < next {
				continue
			}
			if best == nil {
				best = s
				continue
			}
			covers, bestCovers := s.First <= next, best.First <= next
			switch {
			case covers && !bestCovers,
				covers && bestCovers && s.Last > best.Last,
				!covers && !bestCovers && (s.First < best.First || s.First == best.First && s.Last > best.Last):
				best = s
			}
		}
		if best == nil {
			return out
		}
		out = append(out, *best)
		next = best.Last + 1
	}
}
