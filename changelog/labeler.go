package changelog

import (
	"cmp"
	"slices"

	"github.com/tailer-backup/tailer/segment"
)

// Labeler accumulates the changelog labels of one segment, batch by batch,
// so that the segment writer can record them in its trailer and restore
// can choose segments by change id or time without reading bodies.
//
// Labels cover the puts in `l` whose key decodes, except truncation
// markers: a marker sits at the first change id the purge kept, an old id
// that did not change in this segment and would widen MinChange. Entries
// whose value is malformed or opaque still count, as their key says which
// change id was written. Purges (DeleteRange) add no label.
//
// A Labeler is not safe for concurrent use; make one per segment.
type Labeler struct {
	lFamily    uint32
	labels     map[labelKey]*segment.ChangeLabel
	accounts   map[uint32]uint64
	minCapture int64
	maxCapture int64
	batches    int
	stats      Stats
}

type labelKey struct {
	account    uint32
	collection Collection
}

// NewLabeler returns an empty Labeler for a source store whose `l` family
// has id lFamily (FamilyID; NoFamily when there is none).
func NewLabeler(lFamily uint32) *Labeler {
	return &Labeler{
		lFamily:  lFamily,
		labels:   make(map[labelKey]*segment.ChangeLabel),
		accounts: make(map[uint32]uint64),
	}
}

// Add scans one batch and folds it into the labels, the capture range and
// the stats. A corrupt batch returns Scan's error and changes nothing, so
// the caller can decide whether to keep the Labeler's state.
func (l *Labeler) Add(b segment.Batch) error {
	changes, _, st, err := Scan(b, l.lFamily)
	if err != nil {
		return err
	}
	if l.batches == 0 || b.CaptureUnixMs < l.minCapture {
		l.minCapture = b.CaptureUnixMs
	}
	if l.batches == 0 || b.CaptureUnixMs > l.maxCapture {
		l.maxCapture = b.CaptureUnixMs
	}
	l.batches++
	l.stats.Add(st)
	for _, c := range changes {
		if c.Truncation {
			continue
		}
		k := labelKey{c.Account, c.Collection}
		if lb, ok := l.labels[k]; ok {
			lb.MinChange = min(lb.MinChange, c.ChangeID)
			lb.MaxChange = max(lb.MaxChange, c.ChangeID)
		} else {
			l.labels[k] = &segment.ChangeLabel{Account: c.Account, Collection: uint8(c.Collection), MinChange: c.ChangeID, MaxChange: c.ChangeID}
		}
		if id, ok := l.accounts[c.Account]; !ok || c.ChangeID > id {
			l.accounts[c.Account] = c.ChangeID
		}
	}
	return nil
}

// Labels returns one label per (account, collection) seen, sorted by
// account then collection, the order segment trailers require. It returns
// nil when no change was seen.
func (l *Labeler) Labels() []segment.ChangeLabel {
	if len(l.labels) == 0 {
		return nil
	}
	out := make([]segment.ChangeLabel, 0, len(l.labels))
	for _, lb := range l.labels {
		out = append(out, *lb)
	}
	slices.SortFunc(out, func(a, b segment.ChangeLabel) int {
		if c := cmp.Compare(a.Account, b.Account); c != 0 {
			return c
		}
		return cmp.Compare(a.Collection, b.Collection)
	})
	return out
}

// CaptureRange returns the lowest and highest capture time of every batch
// added, with or without changelog entries, as segment trailers record
// them; (0, 0) when none was added.
func (l *Labeler) CaptureRange() (min, max int64) { return l.minCapture, l.maxCapture }

// Stats returns the sum of the stats of every batch added.
func (l *Labeler) Stats() Stats { return l.stats }

// AccountChanges returns, per account, the newest change id seen (truncation
// markers excluded), as export trailers record it. The map is a copy.
func (l *Labeler) AccountChanges() map[uint32]uint64 {
	out := make(map[uint32]uint64, len(l.accounts))
	for a, id := range l.accounts {
		out[a] = id
	}
	return out
}
