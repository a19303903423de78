package compaction

import (
	"context"
	"fmt"
	"time"

	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/segment"
)

// info is what grouping needs from a segment's header and trailer.
type info struct {
	generation string
	identity   string
	families   string // canonical form of the family table: merged inputs must agree
	created    time.Time
	minCapture int64 // unix ms
	maxCapture int64
	records    uint64
}

func infoOf(h segment.Header, t segment.Trailer) info {
	return info{generation: h.Generation, identity: h.DBIdentity, families: fmt.Sprint(h.Families),
		created: h.Created, minCapture: t.MinCaptureUnixMs, maxCapture: t.MaxCaptureUnixMs, records: t.Records}
}

// info returns the segment's summary, reading its framing in place (a few
// small ranged reads) unless the Compactor has seen it before.
func (rn *run) info(ctx context.Context, s layout.Segment) (info, error) {
	if in, ok := rn.c.seen[s.Key]; ok {
		return in, nil
	}
	h, t, err := catalog.ReadFraming(ctx, rn.c.r, s.Key, s.Size)
	if err != nil {
		return info{}, fmt.Errorf("compaction: read the framing of %s: %w", s.Key, err)
	}
	rn.rep.FramingReads++
	in := infoOf(h, t)
	rn.c.seen[s.Key] = in
	return in, nil
}

// member is one segment of a group.
type member struct {
	layout.Segment
	info
}

// group is a run of segments to merge into one.
type group struct {
	level   time.Duration
	window  time.Time
	members []member
	bytes   int64
}

func (g group) first() uint64 { return g.members[0].First }
func (g group) last() uint64  { return g.members[len(g.members)-1].Last }

// target returns the widest level whose window holding capture (unix ms)
// closed at or before cutoff, and that window's start; ok is false when
// even the narrowest window is still open.
func target(levels []time.Duration, capture int64, cutoff time.Time) (level time.Duration, window time.Time, ok bool) {
	for i := len(levels) - 1; i >= 0; i-- {
		d := levels[i].Milliseconds()
		start := capture - capture%d
		if capture < 0 && capture%d != 0 {
			start -= d
		}
		if !time.UnixMilli(start + d).After(cutoff) {
			return levels[i], time.UnixMilli(start).UTC(), true
		}
	}
	return 0, time.Time{}, false
}

// groups splits the generation's uncovered segments into the runs to
// merge: consecutive, contiguous segments going to the same level window,
// with the same identity and family table, within MaxBytes. Segments
// uploaded after the live edge, or whose framing cannot be read, break
// runs and are left alone; the errors of the latter are returned.
func (rn *run) groups(ctx context.Context, g layout.Generation, uncovered []layout.Segment) ([]group, []error) {
	var (
		out  []group
		errs []error
		cur  group
	)
	flush := func() {
		if len(cur.members) >= 2 {
			out = append(out, cur)
		}
		cur = group{}
	}
	cutoff := rn.cutoff()
	for _, s := range uncovered {
		if ctx.Err() != nil {
			return nil, nil
		}
		if s.Modified.After(cutoff) {
			flush()
			continue
		}
		in, err := rn.info(ctx, s)
		if err != nil {
			errs = append(errs, err)
			flush()
			continue
		}
		if in.generation != g.ID {
			errs = append(errs, fmt.Errorf("compaction: %s says it belongs to generation %s: left alone", s.Key, in.generation))
			flush()
			continue
		}
		level, window, ok := target(rn.c.opts.Levels, in.maxCapture, cutoff)
		if !ok || in.records == 0 {
			flush()
			continue
		}
		if n := len(cur.members); n > 0 {
			prev := cur.members[n-1]
			if s.First != prev.Last+1 || level != cur.level || !window.Equal(cur.window) ||
				in.identity != prev.identity || in.families != prev.families || cur.bytes+s.Size > rn.c.opts.MaxBytes {
				flush()
			}
		}
		if len(cur.members) == 0 {
			cur.level, cur.window = level, window
		}
		cur.members = append(cur.members, member{s, in})
		cur.bytes += s.Size
	}
	flush()
	return out, errs
}
