package standby

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
)

// fullListEvery bounds how long a follower relies on narrow listings: a
// full one also notices what a narrow one cannot (a new export of the
// standby's own generation, a generation deleted) and forgets damaged
// objects that compaction has since deleted.
const fullListEvery = 5 * time.Minute

// errNarrow says a narrow listing could not continue the chain: the next
// batch may be in a wider segment that begins before the standby's
// position (compaction merged the narrow ones), or the chain really has a
// hole; a full listing tells which.
var errNarrow = errors.New("the narrow listing cannot continue the chain")

// listAll lists the whole replica, remembers the standby's generation as
// it found it, and forgets damaged objects that are gone.
func (f *follower) listAll(ctx context.Context) ([]layout.Generation, error) {
	gens, _, err := catalog.List(ctx, f.opts.Replica, nil)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{}
	f.known = nil
	for i, g := range gens {
		for _, sg := range g.Segments {
			listed[sg.Key] = true
		}
		if g.ID == f.state.Generation {
			known := gens[i]
			known.Segments = nil // only its generation.json and exports are kept
			f.known = &known
		}
	}
	for key := range f.bad {
		if !listed[key] {
			delete(f.bad, key) // gone (compaction deleted it): nothing left to avoid
		}
	}
	f.lastFull = time.Now()
	return gens, nil
}

// listNew lists only what can be new: the segments of the standby's
// generation that begin after its position, and every object of the
// generations whose IDs sort after it (IDs are time-ordered, so a new
// generation is among them). Keys sort by first sequence number (16 hex
// digits), so S3 starts the listing at the standby's position: a few keys
// per interval however long the replica's history, instead of paging
// through all of it every second. The generation's metadata and exports
// come from the last full listing.
func (f *follower) listNew(ctx context.Context) ([]layout.Generation, error) {
	r, cur := f.opts.Replica, f.known.ID
	segPrefix := layout.Root + cur + "/segments/"
	segs, err := r.ListAfter(ctx, segPrefix, segPrefix+fmt.Sprintf("%016x", f.pos+1))
	if err != nil {
		return nil, err
	}
	// "0" sorts right after "/": past every key of the current generation.
	newer, err := r.ListAfter(ctx, layout.Root, layout.Root+cur+"0")
	if err != nil {
		return nil, err
	}
	objs := make([]layout.Object, 0, len(segs)+len(newer))
	for _, o := range append(segs, newer...) {
		objs = append(objs, layout.Object{Key: o.Key, Size: o.Size, Modified: o.Modified})
	}
	gens, _ := layout.Parse(objs)
	g := *f.known
	out := []layout.Generation{}
	for _, p := range gens {
		if p.ID == cur {
			g.Segments = p.Segments
			continue
		}
		out = append(out, p)
	}
	return append([]layout.Generation{g}, out...), nil
}
