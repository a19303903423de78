package compaction

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/report"
	"github.com/tailer-backup/tailer/internal/testbucket"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// fixture is a replica holding one generation of per-poll segments: one
// every 10 s for 15 minutes (two batches each, captured 3 s apart),
// starting on a 10-minute boundary two hours ago, with a second export
// after segment 40.
type fixture struct {
	t     *testing.T
	dir   string
	root  string // the file replica's directory
	r     uploader.Replica
	b     testbucket.Built
	start time.Time
	n     int // restore directories
}

const (
	fixtureSegments = 90
	exportAfter     = 40
)

func newFixture(t *testing.T, start time.Time, missing ...int) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	root := filepath.Join(dir, "bucket")
	r, err := uploader.Open(ctx, "file://"+root, uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var segs []testbucket.Segment
	for i := range fixtureSegments {
		segs = append(segs, testbucket.Segment{Batches: 2, Capture: start.Add(time.Duration(i)*10*time.Second + 2*time.Second),
			Step: 3 * time.Second, Missing: slices.Contains(missing, i), ExportAfter: i == exportAfter})
	}
	b, err := testbucket.Build(ctx, r, testbucket.Generation{ID: "20261123T080000.000Z-abcdef", Created: start, Segments: segs})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, dir: dir, root: root, r: r, b: b, start: start}
}

// twoHoursAgo is a 10-minute boundary two hours back: every window of
// the fixture is closed, and the objects, uploaded now, are past a live
// edge of a minute when Run is given now + 2 minutes.
func twoHoursAgo() time.Time { return time.Now().Truncate(10 * time.Minute).Add(-2 * time.Hour) }

// segmentLast is the last sequence number of segment i of the fixture.
func segmentLast(i int) uint64 { return 100 + uint64(i+1)*6 }

// targets are the restores compared before, during and after compaction:
// the newest state, points after each export, a point inside a batch, a
// moment of the capture clock and a change id.
func (f *fixture) targets() []restore.Target {
	seq := func(s uint64) restore.Target { return restore.Target{Seq: s, HasSeq: true} }
	return []restore.Target{
		{},
		seq(segmentLast(5)), seq(segmentLast(exportAfter) + 4),
		seq(segmentLast(62) - 1), // inside a batch: stops before it
		{Time: f.start.Add(7*time.Minute + 33*time.Second), HasTime: true},
		{Account: 1, ChangeID: 5 + 111, HasChange: true},
	}
}

// restoreAll restores every target and describes each result.
func (f *fixture) restoreAll(targets []restore.Target) []string {
	f.t.Helper()
	var out []string
	for _, tg := range targets {
		f.n++
		res, err := restore.Run(context.Background(), restore.Options{Replica: f.r, To: filepath.Join(f.dir, fmt.Sprint("restore-", f.n)), Target: tg, Digests: true})
		if err != nil {
			f.t.Fatalf("restore %+v: %v", tg, err)
		}
		if tg.HasSeq {
			if want := f.b.States[res.Seq]; fmt.Sprint(res.Families) != fmt.Sprint(want) {
				f.t.Fatalf("restore at %d differs from the source:\n got %v\nwant %v", res.Seq, res.Families, want)
			}
		}
		out = append(out, fmt.Sprintf("%+v -> %s@%d %v %q", tg, res.Generation, res.Seq, res.Families, res.Note))
	}
	return out
}

func (f *fixture) segments() []layout.Segment {
	f.t.Helper()
	gens, _, err := catalog.List(context.Background(), f.r, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(gens) != 1 {
		f.t.Fatalf("%d generations", len(gens))
	}
	return gens[0].Segments
}

func same(t *testing.T, when string, got, want []string) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: restore differs:\n got %s\nwant %s", when, got[i], want[i])
		}
	}
}

func ranges(segs []layout.Segment) string {
	var parts []string
	for _, s := range segs {
		parts = append(parts, fmt.Sprintf("%d-%d", s.First, s.Last))
	}
	return strings.Join(parts, " ")
}

// TestCompactLevels merges per-poll segments into minutes, then minutes
// into 10-minute segments, deleting the narrow ones right after each
// verification, and restores the same states throughout.
func TestCompactLevels(t *testing.T) {
	if testing.Short() {
		t.Skip("restores every target of a many-segment replica, several times: skipped under -short")
	}
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, twoHoursAgo())
	before := f.restoreAll(f.targets())
	now := time.Now().Add(2 * time.Minute)

	rep, err := Run(ctx, f.r, Options{Levels: []time.Duration{time.Minute}, LiveEdge: time.Minute, Grace: -1}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Merged) != 15 || len(rep.Deleted) != fixtureSegments || rep.Pending != 0 {
		t.Fatalf("minutes: merged %d, deleted %d, pending %d; want 15, %d, 0", len(rep.Merged), len(rep.Deleted), rep.Pending, fixtureSegments)
	}
	segs := f.segments()
	for i, s := range segs {
		if s.First != 101+uint64(i)*36 || s.Last != s.First+35 {
			t.Fatalf("after the minute level: %s", ranges(segs))
		}
	}
	for _, m := range rep.Merged {
		if m.Inputs != 6 || m.Batches != 12 || m.Level != time.Minute || m.Window.Sub(f.start)%time.Minute != 0 {
			t.Errorf("merge %+v", m)
		}
	}

	c, err := New(f.r, Options{Levels: []time.Duration{time.Minute, 10 * time.Minute}, LiveEdge: time.Minute, Grace: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = c.Run(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := ranges(f.segments()); got != fmt.Sprintf("101-%d %d-%d", segmentLast(59), segmentLast(59)+1, segmentLast(89)) {
		t.Fatalf("after the 10-minute level: %s", got)
	}
	if len(rep.Merged) != 2 || len(rep.Deleted) != 15 || rep.FramingReads != 15 {
		t.Fatalf("10 minutes: merged %d, deleted %d, framing reads %d", len(rep.Merged), len(rep.Deleted), rep.FramingReads)
	}
	same(t, "after the 10-minute level", f.restoreAll(f.targets()), before)

	// Idempotent, and the Compactor remembers what it has read.
	rep, err = c.Run(ctx, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Merged)+len(rep.Deleted)+rep.FramingReads+rep.Pending != 0 || rep.DownloadedBytes != 0 {
		t.Fatalf("a second run did something: %+v", rep)
	}
}

// TestRestoreDuringCompaction restores every target at the moment the
// wide segment is uploaded and verified and the narrow ones it replaces
// are all still there.
func TestRestoreDuringCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("restores every target of a many-segment replica, several times: skipped under -short")
	}
	t.Parallel()
	f := newFixture(t, twoHoursAgo())
	targets := f.targets()
	before := f.restoreAll(targets)
	calls := 0
	opts := Options{Levels: []time.Duration{10 * time.Minute}, LiveEdge: time.Minute, Grace: -1,
		afterVerify: func(ctx context.Context, wide string) error {
			calls++
			listed := map[string]bool{}
			for _, s := range f.segments() {
				listed[s.Key] = true
			}
			_, name, _ := strings.Cut(wide, "/segments/")
			first, last, err := segment.ParseSegmentName(name)
			if err != nil || !listed[wide] {
				t.Fatalf("%s is not listed after its upload (%v)", wide, err)
			}
			for _, s := range f.b.Segments {
				if s.First >= first && s.Last <= last && !listed[s.Key] {
					t.Fatalf("%s, inside %s, was deleted before the restores", s.Key, wide)
				}
			}
			same(t, "between upload and deletion of "+wide, f.restoreAll(targets), before)
			return nil
		}}
	rep, err := Run(context.Background(), f.r, opts, time.Now().Add(2*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || len(rep.Merged) != 2 || len(rep.Deleted) != fixtureSegments {
		t.Fatalf("hook calls %d, merged %d, deleted %d", calls, len(rep.Merged), len(rep.Deleted))
	}
	same(t, "after compaction", f.restoreAll(targets), before)
}

// TestGracePeriod: a restore planned from a LIST taken before compaction
// still finds every object it planned with until the grace period is over;
// the narrow segments go only after it, and only after the wide segment is
// verified again. Meanwhile nothing is listed twice in the changelog.
func TestGracePeriod(t *testing.T) {
	if testing.Short() {
		t.Skip("restores every target of a many-segment replica, several times: skipped under -short")
	}
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, twoHoursAgo())
	targets := f.targets()
	before := f.restoreAll(targets)
	gens, _, err := catalog.List(ctx, f.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	var planned []string
	for _, tg := range []restore.Target{{}, {Seq: segmentLast(20), HasSeq: true}} {
		p, err := restore.MakePlan(gens, tg)
		if err != nil {
			t.Fatal(err)
		}
		planned = append(planned, p.Export.Key)
		for _, s := range p.Segments {
			planned = append(planned, s.Key)
		}
	}
	changes := func() int {
		n := 0
		if err := report.Changes(ctx, f.r, report.ChangeFilter{}, func(report.Change) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	changesBefore := changes()

	c, err := New(f.r, Options{Levels: []time.Duration{10 * time.Minute}, LiveEdge: time.Minute, Grace: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(2 * time.Minute)
	for i, step := range []struct {
		at                       time.Duration
		merged, deleted, pending int
	}{
		{0, 2, 0, fixtureSegments},
		{30 * time.Minute, 0, 0, fixtureSegments},
		{2 * time.Hour, 0, fixtureSegments, 0},
	} {
		rep, err := c.Run(ctx, now.Add(step.at))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Merged) != step.merged || len(rep.Deleted) != step.deleted || rep.Pending != step.pending {
			t.Fatalf("run %d: merged %d, deleted %d, pending %d; want %d, %d, %d", i, len(rep.Merged), len(rep.Deleted), rep.Pending, step.merged, step.deleted, step.pending)
		}
		if i < 2 {
			for _, k := range planned {
				if _, err := f.r.ReadRange(ctx, k, 0, 8); err != nil {
					t.Fatalf("run %d: %s, planned before compaction, is gone: %v", i, k, err)
				}
			}
			if n := changes(); n != changesBefore {
				t.Fatalf("run %d: the changelog lists %d changes, %d before", i, n, changesBefore)
			}
		}
		if i == 2 { // the state between upload and deletion: TestRestoreDuringCompaction
			same(t, "after the grace period", f.restoreAll(targets), before)
		}
	}
	if got := ranges(f.segments()); got != fmt.Sprintf("101-%d %d-%d", segmentLast(59), segmentLast(59)+1, segmentLast(89)) {
		t.Fatalf("after the grace period: %s", got)
	}
}

// TestNeverAcrossAHole: a missing segment splits the runs; nothing is
// merged over it, and what restored before still restores.
func TestNeverAcrossAHole(t *testing.T) {
	if testing.Short() {
		t.Skip("restores every target of a many-segment replica, several times: skipped under -short")
	}
	t.Parallel()
	f := newFixture(t, twoHoursAgo(), 20)
	targets := []restore.Target{
		{Seq: segmentLast(19), HasSeq: true}, {Seq: segmentLast(exportAfter), HasSeq: true},
		{Seq: f.b.Last, HasSeq: true}, {Seq: segmentLast(5), HasSeq: true},
	}
	before := f.restoreAll(targets)
	rep, err := Run(context.Background(), f.r, Options{Levels: []time.Duration{10 * time.Minute}, LiveEdge: time.Minute, Grace: -1}, time.Now().Add(2*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	hole := f.b.Missing[0]
	want := fmt.Sprintf("101-%d %d-%d %d-%d", hole.First-1, hole.Last+1, segmentLast(59), segmentLast(59)+1, segmentLast(89))
	if got := ranges(f.segments()); got != want {
		t.Fatalf("segments %s, want %s", got, want)
	}
	if len(rep.Merged) != 3 {
		t.Fatalf("merged %+v", rep.Merged)
	}
	same(t, "after compaction", f.restoreAll(targets), before)
}

// TestLiveEdge: segments uploaded within the live edge are not touched,
// and neither are windows that closed within it.
func TestLiveEdge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Captures from 5 minutes ago to 10 minutes ahead (the clock of the
	// test's tailer), all uploaded now.
	start := time.Now().Add(-5 * time.Minute)
	f := newFixture(t, start)
	all := ranges(f.segments())

	// Uploaded within the live edge: nothing happens.
	rep, err := Run(ctx, f.r, Options{Levels: []time.Duration{time.Minute}, LiveEdge: 5 * time.Minute, Grace: -1}, time.Now().Add(3*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Merged) != 0 || ranges(f.segments()) != all || rep.FramingReads != 0 {
		t.Fatalf("touched segments uploaded within the live edge: %+v", rep)
	}

	// Later: the minutes that closed before now - 5m merge, the rest not.
	now := time.Now().Add(8 * time.Minute)
	cutoff := now.Add(-5 * time.Minute)
	if _, err := Run(ctx, f.r, Options{Levels: []time.Duration{time.Minute}, LiveEdge: 5 * time.Minute, Grace: -1}, now, nil); err != nil {
		t.Fatal(err)
	}
	after := f.segments()
	merged := 0
	for i, s := range f.b.Segments {
		lastCapture := start.Add(time.Duration(i)*10*time.Second + 5*time.Second)
		windowEnd := lastCapture.Truncate(time.Minute).Add(time.Minute)
		if windowEnd.After(cutoff) && !slices.ContainsFunc(after, func(a layout.Segment) bool { return a.Key == s.Key }) {
			t.Errorf("%s (window ending %s, after the live edge %s) was compacted", s.Key, windowEnd, cutoff)
		}
	}
	for _, a := range after {
		if a.Last-a.First > 5 {
			merged++
		}
	}
	if merged == 0 {
		t.Fatalf("nothing before the live edge was merged: %s", ranges(after))
	}
}

// TestBadUploadIsUndone: a merged segment that does not read back as
// built is deleted again, and the narrow segments are untouched.
func TestBadUploadIsUndone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, twoHoursAgo())
	all := ranges(f.segments())
	opts := Options{Levels: []time.Duration{10 * time.Minute}, LiveEdge: time.Minute, Grace: -1,
		afterUpload: func(_ context.Context, wide string) error {
			return flipByte(filepath.Join(f.root, filepath.FromSlash(wide)))
		}}
	rep, err := Run(context.Background(), f.r, opts, time.Now().Add(2*time.Minute), nil)
	if err == nil || !strings.Contains(err.Error(), "failed verification and was deleted") || !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("err = %v", err)
	}
	if len(rep.Merged) != 0 || len(rep.Deleted) != 0 || ranges(f.segments()) != all {
		t.Fatalf("after a bad upload: merged %d, deleted %d, segments %s", len(rep.Merged), len(rep.Deleted), ranges(f.segments()))
	}
}

// TestDamagedWideSegment: when a wide segment is found damaged while its
// narrow segments wait out the grace period, the narrow ones are kept, the
// damaged copy (which restore would prefer) is deleted, and the next run
// merges again.
func TestDamagedWideSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("restores every target of a many-segment replica, several times: skipped under -short")
	}
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, twoHoursAgo())
	before := f.restoreAll(f.targets())
	c, err := New(f.r, Options{Levels: []time.Duration{10 * time.Minute}, LiveEdge: time.Minute, Grace: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(2 * time.Minute)
	rep, err := c.Run(ctx, now)
	if err != nil || len(rep.Merged) != 2 {
		t.Fatalf("merged %d: %v", len(rep.Merged), err)
	}
	bad := rep.Merged[0].Key
	if err := flipByte(filepath.Join(f.root, filepath.FromSlash(bad))); err != nil {
		t.Fatal(err)
	}
	rep, err = c.Run(ctx, now.Add(2*time.Hour))
	if err == nil || !strings.Contains(err.Error(), "damaged and was deleted") {
		t.Fatalf("err = %v", err)
	}
	if !slices.Equal(rep.Damaged, []string{bad}) || len(rep.Deleted) != 30 {
		t.Fatalf("damaged %v, deleted %d (the other wide segment's 30)", rep.Damaged, len(rep.Deleted))
	}
	same(t, "after the damaged copy was deleted", f.restoreAll(f.targets()), before)
	rep, err = c.Run(ctx, now.Add(2*time.Hour))
	if err != nil || len(rep.Merged) != 1 {
		t.Fatalf("merging again: merged %d: %v", len(rep.Merged), err)
	}
}

// TestDryRun changes nothing and reports what a real run does.
func TestDryRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, twoHoursAgo())
	all := ranges(f.segments())
	opts := Options{Levels: []time.Duration{10 * time.Minute}, LiveEdge: time.Minute, Grace: -1}
	now := time.Now().Add(2 * time.Minute)
	dry := opts
	dry.DryRun = true
	drep, err := Run(ctx, f.r, dry, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ranges(f.segments()) != all || drep.DownloadedBytes != 0 || drep.WrittenBytes != 0 {
		t.Fatalf("the dry run changed the bucket or downloaded: %+v", drep)
	}
	rep, err := Run(ctx, f.r, opts, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(drep.Merged) != len(rep.Merged) || fmt.Sprint(drep.Deleted) != fmt.Sprint(rep.Deleted) {
		t.Fatalf("dry run planned %d merges and %v, the run did %d and %v", len(drep.Merged), drep.Deleted, len(rep.Merged), rep.Deleted)
	}
	for i := range rep.Merged {
		if drep.Merged[i].Key != rep.Merged[i].Key {
			t.Fatalf("dry run merge %s, real %s", drep.Merged[i].Key, rep.Merged[i].Key)
		}
	}
}

// flipByte damages a file in the middle, as a bad disk or upload would.
func flipByte(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b[len(b)/2] ^= 0x55
	return os.WriteFile(path, b, 0o644)
}
