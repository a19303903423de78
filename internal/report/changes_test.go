package report

import (
	"testing"

	"github.com/tailer-backup/tailer/changelog"
	"github.com/tailer-backup/tailer/segment"
)

// TestChangeFilter: a segment is downloaded only when its trailer (capture
// range, labels) leaves room for a match, and a change is reported only
// when it passes every bound given.
func TestChangeFilter(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	tr := segment.Trailer{MinCaptureUnixMs: 1000, MaxCaptureUnixMs: 2000,
		Labels: []segment.ChangeLabel{{Account: 7, Collection: 1, MinChange: 3, MaxChange: 9}}}
	c := changelog.Change{Account: 7, Collection: 1, CaptureUnixMs: 1500}
	for _, tc := range []struct {
		name       string
		f          ChangeFilter
		trailer    segment.Trailer
		may, match bool
	}{
		{"no filter", ChangeFilter{}, tr, true, true},
		{"no filter, no labels", ChangeFilter{}, segment.Trailer{MaxCaptureUnixMs: 2000}, false, true},
		{"account", ChangeFilter{Account: u(7)}, tr, true, true},
		{"other account", ChangeFilter{Account: u(8)}, tr, false, false},
		{"collection", ChangeFilter{Collection: u(1)}, tr, true, true},
		{"other collection", ChangeFilter{Account: u(7), Collection: u(2)}, tr, false, false},
		{"since before", ChangeFilter{SinceMs: 1500}, tr, true, true},
		{"since after the segment", ChangeFilter{SinceMs: 2001}, tr, false, false},
		{"until before the segment", ChangeFilter{UntilMs: 999}, tr, false, false},
		{"until inside, change after", ChangeFilter{UntilMs: 1200}, tr, true, false},
	} {
		if got := tc.f.mayMatch(tc.trailer); got != tc.may {
			t.Errorf("%s: mayMatch = %v, want %v", tc.name, got, tc.may)
		}
		if got := tc.f.match(c); got != tc.match {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.match)
		}
	}
}
