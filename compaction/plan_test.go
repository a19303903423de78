package compaction

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/segment"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestTarget(t *testing.T) {
	levels := []time.Duration{time.Minute, time.Hour}
	tests := []struct {
		name    string
		capture time.Time
		cutoff  time.Time
		level   time.Duration
		window  time.Time
		ok      bool
	}{
		{"minute still open", t0.Add(30 * time.Second), t0.Add(59 * time.Second), 0, time.Time{}, false},
		{"minute closed exactly at the cutoff", t0.Add(30 * time.Second), t0.Add(time.Minute), time.Minute, t0, true},
		{"minute closed, hour open", t0.Add(10*time.Minute + time.Second), t0.Add(30 * time.Minute), time.Minute, t0.Add(10 * time.Minute), true},
		{"hour closed goes straight to the hour", t0.Add(10 * time.Minute), t0.Add(2 * time.Hour), time.Hour, t0, true},
		{"last millisecond of a window", t0.Add(time.Hour - time.Millisecond), t0.Add(time.Hour), time.Hour, t0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			level, window, ok := target(levels, tc.capture.UnixMilli(), tc.cutoff)
			if ok != tc.ok || level != tc.level || !window.Equal(tc.window) {
				t.Errorf("target = %v %v %v, want %v %v %v", level, window, ok, tc.level, tc.window, tc.ok)
			}
		})
	}
}

// seg is a synthetic segment for grouping tests: its range, its newest
// capture time, and optional overrides.
type seg struct {
	first, last uint64
	capture     time.Time
	size        int64
	uploaded    time.Time // default: long ago
	identity    string
	generation  string
}

func TestGroups(t *testing.T) {
	at := func(m, s int) time.Time { return t0.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second) }
	// Five segments a minute, 12 s apart, from 10:00 to 10:03.
	perPoll := func(minutes int) []seg {
		var out []seg
		next := uint64(101)
		for m := range minutes {
			for i := range 5 {
				out = append(out, seg{first: next, last: next + 2, capture: at(m, 12*i+5)})
				next += 3
			}
		}
		return out
	}
	tests := []struct {
		name     string
		segs     []seg
		now      time.Time
		opts     Options
		want     []string // "level window first-last"
		wantErrs int
	}{
		{"closed minutes merge, the live edge stays", perPoll(4), at(9, 0),
			Options{Levels: []time.Duration{time.Minute, time.Hour}, LiveEdge: 5 * time.Minute},
			[]string{"1m0s 10:00 101-115", "1m0s 10:01 116-130", "1m0s 10:02 131-145", "1m0s 10:03 146-160"}, 0},
		{"a minute closing inside the live edge is left", perPoll(4), at(7, 30),
			Options{Levels: []time.Duration{time.Minute, time.Hour}, LiveEdge: 5 * time.Minute},
			[]string{"1m0s 10:00 101-115", "1m0s 10:01 116-130"}, 0},
		{"a closed hour takes everything at once", perPoll(4), t0.Add(2 * time.Hour),
			Options{Levels: []time.Duration{time.Minute, time.Hour}, LiveEdge: 5 * time.Minute},
			[]string{"1h0m0s 10:00 101-160"}, 0},
		{"never across a hole", func() []seg {
			s := perPoll(2)
			return append(s[:3], s[4:]...) // 110..112 missing
		}(), t0.Add(2 * time.Hour), Options{Levels: []time.Duration{time.Hour}, LiveEdge: time.Minute},
			[]string{"1h0m0s 10:00 101-109", "1h0m0s 10:00 113-130"}, 0},
		{"a lone segment on each side of a hole is not merged", func() []seg {
			s := perPoll(1)
			return []seg{s[0], s[2], s[4]}
		}(), t0.Add(2 * time.Hour), Options{Levels: []time.Duration{time.Hour}, LiveEdge: time.Minute}, nil, 0},
		{"a segment uploaded within the live edge breaks the run", func() []seg {
			s := perPoll(1)
			s[2].uploaded = at(59, 0)
			return s
		}(), t0.Add(time.Hour), Options{Levels: []time.Duration{time.Minute}, LiveEdge: 5 * time.Minute},
			[]string{"1m0s 10:00 101-106", "1m0s 10:00 110-115"}, 0},
		{"another source identity breaks the run", func() []seg {
			s := perPoll(1)
			for i := 3; i < 5; i++ {
				s[i].identity = "other"
			}
			return s
		}(), t0.Add(time.Hour), Options{Levels: []time.Duration{time.Minute}, LiveEdge: time.Minute},
			[]string{"1m0s 10:00 101-109", "1m0s 10:00 110-115"}, 0},
		{"MaxBytes splits a window", perPoll(1), t0.Add(time.Hour),
			Options{Levels: []time.Duration{time.Minute}, LiveEdge: time.Minute, MaxBytes: 250},
			[]string{"1m0s 10:00 101-106", "1m0s 10:00 107-112"}, 0},
		{"a segment claiming another generation is left and reported", func() []seg {
			s := perPoll(1)
			s[1].generation = "other"
			return s
		}(), t0.Add(time.Hour), Options{Levels: []time.Duration{time.Minute}, LiveEdge: time.Minute},
			[]string{"1m0s 10:00 107-115"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(nil, tc.opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			g := layout.Generation{ID: "g"}
			for _, s := range tc.segs {
				if s.size == 0 {
					s.size = 100
				}
				if s.uploaded.IsZero() {
					s.uploaded = t0.Add(-24 * time.Hour)
				}
				if s.identity == "" {
					s.identity = "id"
				}
				if s.generation == "" {
					s.generation = "g"
				}
				key := layout.SegmentKey("g", s.first, s.last)
				g.Segments = append(g.Segments, layout.Segment{Object: layout.Object{Key: key, Size: s.size, Modified: s.uploaded}, First: s.first, Last: s.last})
				c.seen[key] = info{generation: s.generation, identity: s.identity, families: "f", records: 1,
					minCapture: s.capture.UnixMilli() - 1000, maxCapture: s.capture.UnixMilli()}
			}
			rn := &run{c: c, now: tc.now, rep: &Report{}}
			groups, errs := rn.groups(context.Background(), g, g.Coverage().Uncovered)
			var got []string
			for _, grp := range groups {
				got = append(got, fmt.Sprintf("%v %s %d-%d", grp.level, grp.window.Format("15:04"), grp.first(), grp.last()))
			}
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("groups\n got %v\nwant %v", got, tc.want)
			}
			if len(errs) != tc.wantErrs {
				t.Errorf("errors = %v, want %d", errs, tc.wantErrs)
			}
			if rn.rep.FramingReads != 0 {
				t.Errorf("read the framing of %d remembered segments", rn.rep.FramingReads)
			}
		})
	}
}

func TestMergeLabels(t *testing.T) {
	l := func(a uint32, c uint8, lo, hi uint64) segment.ChangeLabel {
		return segment.ChangeLabel{Account: a, Collection: c, MinChange: lo, MaxChange: hi}
	}
	got := mergeLabels([]segment.Trailer{
		{Labels: []segment.ChangeLabel{l(2, 1, 10, 12), l(7, 0, 3, 3)}},
		{},
		{Labels: []segment.ChangeLabel{l(1, 5, 1, 1), l(2, 1, 13, 20), l(2, 0, 4, 4)}},
		{Labels: []segment.ChangeLabel{l(2, 1, 8, 9)}},
	})
	want := []segment.ChangeLabel{l(1, 5, 1, 1), l(2, 0, 4, 4), l(2, 1, 8, 20), l(7, 0, 3, 3)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("merged\n got %v\nwant %v", got, want)
	}
	if mergeLabels([]segment.Trailer{{}, {}}) != nil {
		t.Error("no labels should merge to nil, as the writer stores them")
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		o   Options
		err string
	}{
		{Options{Levels: []time.Duration{time.Hour, time.Minute}}, "increasing"},
		{Options{Levels: []time.Duration{time.Millisecond}}, "at least 1s"},
	} {
		if _, err := New(nil, tc.o, nil); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: err = %v, want %q", tc.o, err, tc.err)
		}
	}
	c, err := New(nil, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := c.opts; fmt.Sprint(o.Levels) != "[1m0s 1h0m0s]" || o.LiveEdge != DefaultLiveEdge || o.Grace != DefaultGrace || o.MaxBytes != DefaultMaxBytes ||
		o.Compression != DefaultCompression {
		t.Errorf("defaults = %+v", o)
	}
}
