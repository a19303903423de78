package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tailer-backup/tailer/changelog"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// ChangeFilter narrows the changelog read from a replica. Zero fields do
// not filter.
type ChangeFilter struct {
	Account, Collection *uint32 // Collection holds a changelog.Collection
	SinceMs, UntilMs    int64   // capture time bounds in unix ms (0: open)
}

// Change is one changelog entry found in a replica, with its generation.
type Change struct {
	Generation string `json:"generation"`
	changelog.Change
}

// Changes calls fn for every change recorded in the replica's segments
// that passes f, in generation and sequence order. Segments whose trailer
// (capture range, change-id labels) rules them out are not downloaded.
func Changes(ctx context.Context, r uploader.Replica, f ChangeFilter, fn func(Change) error) error {
	gens, _, err := catalog.List(ctx, r, nil)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "tailer-changes-")
	if err != nil {
		return fmt.Errorf("temp dir for segments: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, g := range gens {
		// Only uncovered segments: while compaction's grace period keeps
		// both a wide segment and the narrow ones it replaced, walking all
		// of them would report every change twice.
		for _, s := range g.Coverage().Uncovered {
			_, tr, err := catalog.ReadFraming(ctx, r, s.Key, s.Size)
			if err != nil {
				return err
			}
			if !f.mayMatch(tr) {
				continue
			}
			if err := scanSegment(ctx, r, g, s, tmp, f, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// mayMatch decides from a trailer alone whether a segment can hold a match.
func (f ChangeFilter) mayMatch(tr segment.Trailer) bool {
	if f.SinceMs != 0 && tr.MaxCaptureUnixMs < f.SinceMs || f.UntilMs != 0 && tr.MinCaptureUnixMs > f.UntilMs {
		return false
	}
	if f.Account == nil && f.Collection == nil {
		return len(tr.Labels) > 0
	}
	for _, l := range tr.Labels {
		if (f.Account == nil || l.Account == *f.Account) && (f.Collection == nil || uint32(l.Collection) == *f.Collection) {
			return true
		}
	}
	return false
}

func (f ChangeFilter) match(c changelog.Change) bool {
	return (f.Account == nil || c.Account == *f.Account) &&
		(f.Collection == nil || uint32(c.Collection) == *f.Collection) &&
		(f.SinceMs == 0 || c.CaptureUnixMs >= f.SinceMs) &&
		(f.UntilMs == 0 || c.CaptureUnixMs <= f.UntilMs)
}

func scanSegment(ctx context.Context, r uploader.Replica, g layout.Generation, s layout.Segment, tmp string, f ChangeFilter, fn func(Change) error) error {
	path := filepath.Join(tmp, "segment")
	n, err := uploader.Download(ctx, r, s.Key, path)
	if err != nil {
		return fmt.Errorf("download %s: %w", s.Key, err)
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	rd, err := segment.Open(file, n, s.Key)
	if err != nil {
		return err
	}
	lID, _ := changelog.FamilyID(rd.Header().Families)
	for {
		b, err := rd.NextBatch()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		changes, _, _, err := changelog.Scan(b, lID)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Key, err)
		}
		for _, c := range changes {
			if c.Truncation || !f.match(c) {
				continue
			}
			if err := fn(Change{Generation: g.ID, Change: c}); err != nil {
				return err
			}
		}
	}
}

// AccountChanges returns each account's newest change id in the newest
// generation: its newest export's record plus the labels of the segments
// after it (read in place, not downloaded).
func AccountChanges(ctx context.Context, r uploader.Replica) (string, map[uint32]uint64, error) {
	gens, _, err := catalog.List(ctx, r, nil)
	if err != nil {
		return "", nil, err
	}
	for i := len(gens) - 1; i >= 0; i-- {
		g := gens[i]
		if len(g.Exports) == 0 {
			continue
		}
		e := g.Exports[len(g.Exports)-1]
		_, tr, err := catalog.ReadFraming(ctx, r, e.Key, e.Size)
		if err != nil {
			return "", nil, err
		}
		out := map[uint32]uint64{}
		for a, c := range tr.AccountChanges {
			out[a] = c
		}
		for _, s := range g.Coverage().Uncovered {
			if s.Last <= e.Seq {
				continue
			}
			_, st, err := catalog.ReadFraming(ctx, r, s.Key, s.Size)
			if err != nil {
				return "", nil, err
			}
			for _, l := range st.Labels {
				out[l.Account] = max(out[l.Account], l.MaxChange)
			}
		}
		return g.ID, out, nil
	}
	return "", nil, fmt.Errorf("the replica holds no generation with an export")
}
