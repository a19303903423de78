package retention_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/testbucket"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/retention"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/conformance"
)

var day0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func day(n float64) time.Time { return day0.Add(time.Duration(n * float64(24*time.Hour))) }

// bucket builds two generations:
//
//	A: base export day 1, segments every 6 h, a second export at day 1.5
//	   (after the second segment), more segments to day 2.25;
//	B: started day 3 (a new store), base export, two segments, an export
//	   at day 3.5, one segment.
func bucket(t *testing.T) (uploader.Replica, string, []testbucket.Built) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	r, err := uploader.Open(ctx, "file://"+filepath.Join(dir, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seg := func(at time.Time, export bool) testbucket.Segment {
		return testbucket.Segment{Batches: 3, Capture: at, Step: time.Minute, ExportAfter: export}
	}
	a, err := testbucket.Build(ctx, r, testbucket.Generation{ID: "20261101T000000.000Z-aaaaaa", Created: day(1), Segments: []testbucket.Segment{
		seg(day(1.25), false), seg(day(1.45), true), seg(day(1.75), false), seg(day(2.25), false),
	}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := testbucket.Build(ctx, r, testbucket.Generation{ID: "20261103T000000.000Z-bbbbbb", Created: day(3), Account: 2, Segments: []testbucket.Segment{
		seg(day(3.1), false), seg(day(3.45), true), seg(day(3.75), false),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r, dir, []testbucket.Built{a, b}
}

func keys(t *testing.T, r uploader.Replica) []string {
	t.Helper()
	infos, err := r.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range infos {
		out = append(out, o.Key)
	}
	return out
}

func restoreAt(t *testing.T, r uploader.Replica, to string, target restore.Target) restore.Result {
	t.Helper()
	res, err := restore.Run(context.Background(), restore.Options{Replica: r, To: to, Target: target, Digests: true})
	if err != nil {
		t.Fatalf("restore %+v: %v", target, err)
	}
	return res
}

func TestApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		policy     retention.Policy
		goneGens   int    // generations deleted whole
		oldestGen  int    // index of the generation of the oldest kept export
		oldestExp  int    // index of that export in its generation
		keepSegsOf []bool // per generation of the oldest: are its segments before the export gone?
	}{
		{"keep the newest export only", retention.Policy{KeepExports: 1}, 1, 1, 1, nil},
		{"keep two exports", retention.Policy{KeepExports: 2}, 1, 1, 0, nil},
		{"keep three exports: generation A's second chain stays", retention.Policy{KeepExports: 3}, 0, 0, 1, nil},
		{"a week: everything stays", retention.Policy{MaxAge: 7 * 24 * time.Hour}, 0, 0, 0, nil},
		// now = day 4: a window from day 2 needs A's day-1.5 export, as
		// the state at day 2 is in A's chain after it.
		{"two days", retention.Policy{MaxAge: 48 * time.Hour}, 0, 0, 1, nil},
		{"twelve hours", retention.Policy{MaxAge: 12 * time.Hour}, 1, 1, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r, dir, built := bucket(t)
			before := keys(t, r)
			newestBefore := restoreAt(t, r, filepath.Join(dir, "newest-before"), restore.Target{})

			dry := tc.policy
			dry.DryRun = true
			drep, err := retention.Apply(ctx, r, dry, day(4), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(t, r); !slices.Equal(got, before) {
				t.Fatalf("dry run changed the bucket:\n%v\n%v", before, got)
			}

			rep, err := retention.Apply(ctx, r, tc.policy, day(4), nil)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(rep.Deleted) != fmt.Sprint(drep.Deleted) || !drep.DryRun || rep.DryRun {
				t.Fatalf("the dry run planned something else:\n dry %v\nreal %v", drep.Deleted, rep.Deleted)
			}
			after := keys(t, r)
			if len(after)+rep.Objects != len(before) || rep.KeptObjects != len(after) {
				t.Fatalf("%d objects before, %d deleted, %d left, report says %d kept", len(before), rep.Objects, len(after), rep.KeptObjects)
			}
			var total int64
			for _, d := range rep.Deleted {
				total += d.Size
				if slices.Contains(after, d.Key) {
					t.Errorf("%s reported deleted but still there", d.Key)
				}
			}
			if total != rep.Bytes {
				t.Errorf("report bytes %d, sum of deletions %d", rep.Bytes, total)
			}

			// Generations: the old ones gone whole, generation.json last.
			if len(rep.GenerationsDeleted) != tc.goneGens {
				t.Errorf("generations deleted = %v, want %d", rep.GenerationsDeleted, tc.goneGens)
			}
			for _, id := range rep.GenerationsDeleted {
				var seenMeta bool
				for _, d := range rep.Deleted {
					if d.Generation != id {
						continue
					}
					if seenMeta {
						t.Errorf("%s deleted after the generation.json of %s", d.Key, id)
					}
					seenMeta = d.Kind == retention.KindGeneration
				}
			}
			og := built[tc.oldestGen]
			if rep.Oldest.Generation != og.ID || rep.Oldest.ExportSeq != og.Exports[tc.oldestExp].Seq {
				t.Fatalf("oldest kept = %+v, want %s at %d", rep.Oldest, og.ID, og.Exports[tc.oldestExp].Seq)
			}

			// The newest state is untouched, and so is every kept point:
			// the oldest kept export and the newest state of its chain.
			newestAfter := restoreAt(t, r, filepath.Join(dir, "newest-after"), restore.Target{})
			if newestAfter.Seq != newestBefore.Seq || fmt.Sprint(newestAfter.Families) != fmt.Sprint(newestBefore.Families) {
				t.Fatalf("newest restore changed: %d %v -> %d %v", newestBefore.Seq, newestBefore.Families, newestAfter.Seq, newestAfter.Families)
			}
			for i, seq := range []uint64{rep.Oldest.ExportSeq, og.Last} {
				res := restoreAt(t, r, filepath.Join(dir, fmt.Sprint("kept-", i)), restore.Target{Generation: og.ID, Seq: seq, HasSeq: true})
				if res.Seq != seq || fmt.Sprint(res.Families) != fmt.Sprint(og.States[seq]) {
					t.Fatalf("kept point %d of %s restores to %d %v, want %v", seq, og.ID, res.Seq, res.Families, og.States[seq])
				}
			}
			// The window's first moment restores (retention by age), when
			// the bucket held anything that old.
			if cutoff := day(4).Add(-tc.policy.MaxAge); tc.policy.MaxAge > 0 && !rep.Oldest.ExportTime.After(cutoff) {
				restoreAt(t, r, filepath.Join(dir, "cutoff"), restore.Target{Time: cutoff, HasTime: true})
			}
			// Older exports of the oldest generation are gone, nothing
			// before them restores.
			gens, _, err := catalog.List(ctx, r, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range gens {
				for _, e := range g.Exports {
					if g.ID == og.ID && e.Seq < rep.Oldest.ExportSeq {
						t.Errorf("export %s older than the oldest kept one survived", e.Key)
					}
				}
				for _, s := range g.Segments {
					if g.ID == og.ID && s.Last <= rep.Oldest.ExportSeq {
						t.Errorf("segment %s before the oldest kept export survived", s.Key)
					}
				}
			}

			// Idempotent: a second run finds nothing to do.
			again, err := retention.Apply(ctx, r, tc.policy, day(4), nil)
			if err != nil {
				t.Fatal(err)
			}
			if again.Objects != 0 {
				t.Errorf("a second run deleted %v", again.Deleted)
			}
		})
	}
}

// TestApplyKeepsTheRunningGeneration: a generation `run` just started (its
// base export not uploaded yet) is never touched, and the previous chain
// stays as the newest restorable one.
func TestApplyKeepsTheRunningGeneration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, dir, built := bucket(t)
	fresh, err := testbucket.Build(ctx, r, testbucket.Generation{ID: "20261104T000000.000Z-cccccc", Created: day(4), NoExport: true,
		Segments: []testbucket.Segment{{Batches: 1, Capture: day(4)}}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := retention.Apply(ctx, r, retention.Policy{KeepExports: 1}, day(4), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Deleted {
		if d.Generation == fresh.ID {
			t.Fatalf("deleted %s of the generation being started", d.Key)
		}
	}
	if rep.Oldest.Generation != built[1].ID || rep.Oldest.ExportSeq != built[1].Exports[1].Seq {
		t.Fatalf("oldest kept = %+v", rep.Oldest)
	}
	res := restoreAt(t, r, filepath.Join(dir, "newest"), restore.Target{})
	if res.Generation != built[1].ID || res.Seq != built[1].Last {
		t.Fatalf("newest restore: %s at %d, want %s at %d", res.Generation, res.Seq, built[1].ID, built[1].Last)
	}
}

// TestApplyUnreadableExportHeader: an export whose header cannot be read
// is dated by its upload time, which keeps at least as much.
func TestApplyUnreadableExportHeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, err := uploader.Open(ctx, "file://"+filepath.Join(t.TempDir(), "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ago := func(days float64) time.Time { return now.Add(-time.Duration(days * float64(24*time.Hour))) }
	b, err := testbucket.Build(ctx, r, testbucket.Generation{ID: "20261101T000000.000Z-aaaaaa", Created: ago(3), Segments: []testbucket.Segment{
		{Batches: 2, Capture: ago(2.6), ExportAfter: true}, {Batches: 2, Capture: ago(1)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	policy := retention.Policy{MaxAge: 48 * time.Hour, DryRun: true}
	// Readable: the second export (2.6 days old) is the window's base.
	rep, err := retention.Apply(ctx, r, policy, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Oldest.ExportSeq != b.Exports[1].Seq || rep.Objects != 2 {
		t.Fatalf("readable: oldest %+v, deletions %v", rep.Oldest, rep.Deleted)
	}
	// Unreadable: dated by its upload (just now), it is inside the window,
	// so the first export stays the base and nothing goes.
	junk := []byte("not an export")
	if err := r.Put(ctx, b.Exports[1].Key, bytes.NewReader(junk), int64(len(junk))); err != nil {
		t.Fatal(err)
	}
	rep, err = retention.Apply(ctx, r, policy, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExportTimesFromListing != 1 || rep.Objects != 0 || rep.Oldest.ExportSeq != b.Exports[0].Seq {
		t.Fatalf("unreadable: %d from listing, oldest %+v, deletions %v", rep.ExportTimesFromListing, rep.Oldest, rep.Deleted)
	}
}

// damageBody flips one byte in the middle of an object's body, leaving
// its header and trailer readable: only a full read finds it.
func damageBody(t *testing.T, r uploader.Replica, key string) {
	t.Helper()
	ctx := context.Background()
	b := conformance.Get(t, r, key)
	hdrEnd := 14 + int64(binary.LittleEndian.Uint32(b[10:14]))
	body := int64(binary.LittleEndian.Uint64(b[len(b)-24:]))
	b[hdrEnd+body/2] ^= 0x40
	if err := r.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := catalog.ReadFraming(ctx, r, key, int64(len(b))); err != nil {
		t.Fatalf("damaging the body of %s broke its framing: %v", key, err)
	}
}

func replaceWithJunk(t *testing.T, r uploader.Replica, key string) {
	t.Helper()
	junk := []byte("not an export")
	if err := r.Put(context.Background(), key, bytes.NewReader(junk), int64(len(junk))); err != nil {
		t.Fatal(err)
	}
}

// TestApplyCorruptNewestExport: when the newest export does not verify,
// restore falls back to the export before it, so `--retain-exports 1`
// must keep that one and every segment after it. The damaged export stays
// too (it is not retention's to delete) and is reported.
func TestApplyCorruptNewestExport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(*testing.T, uploader.Replica, string)
	}{
		{"a flipped body byte", damageBody},
		{"an unreadable header", replaceWithJunk},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r, dir, built := bucket(t)
			b := built[1] // the newest generation: base export, then one at day 3.5
			bad := b.Exports[1].Key
			tc.damage(t, r, bad)
			before := keys(t, r)

			rep, err := retention.Apply(ctx, r, retention.Policy{KeepExports: 1}, day(4), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Unverified) != 1 || rep.Unverified[0].Key != bad {
				t.Errorf("unverified = %v, want %s", rep.Unverified, bad)
			}
			if rep.Oldest.Generation != b.ID || rep.Oldest.ExportSeq != b.Exports[0].Seq {
				t.Errorf("oldest kept = %+v, want %s at %d", rep.Oldest, b.ID, b.Exports[0].Seq)
			}
			after := keys(t, r)
			for _, k := range append([]string{b.Meta, bad, b.Exports[0].Key}, segKeys(b)...) {
				if !slices.Contains(after, k) {
					t.Errorf("%s was deleted", k)
				}
			}
			for _, d := range rep.Deleted {
				if d.Generation != built[0].ID {
					t.Errorf("deleted %s outside the older generation", d.Key)
				}
			}
			if len(before)-len(after) != rep.Objects || rep.Objects == 0 {
				t.Errorf("%d objects before, %d after, report says %d deleted", len(before), len(after), rep.Objects)
			}
			// The newest state restores, from the older export.
			res := restoreAt(t, r, filepath.Join(dir, "newest"), restore.Target{})
			if res.Generation != b.ID || res.Seq != b.Last || fmt.Sprint(res.Families) != fmt.Sprint(b.States[b.Last]) {
				t.Fatalf("newest restore: %s at %d %v, want %s at %d %v", res.Generation, res.Seq, res.Families, b.ID, b.Last, b.States[b.Last])
			}
			if !strings.Contains(res.Note, "older export") {
				t.Errorf("the restore did not say it skipped %s: note %q", bad, res.Note)
			}
		})
	}
}

func segKeys(b testbucket.Built) []string {
	var out []string
	for _, s := range b.Segments {
		out = append(out, s.Key)
	}
	return out
}

// TestApplyCorruptNewestGeneration: when no export of the newest
// generation verifies, the previous generation's newest chain is the
// newest restorable one and stays whole.
func TestApplyCorruptNewestGeneration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, dir, built := bucket(t)
	a, b := built[0], built[1]
	for _, e := range b.Exports {
		damageBody(t, r, e.Key)
	}
	rep, err := retention.Apply(ctx, r, retention.Policy{KeepExports: 1}, day(4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Oldest.Generation != a.ID || rep.Oldest.ExportSeq != a.Exports[1].Seq || len(rep.Unverified) != 2 {
		t.Fatalf("oldest kept = %+v, unverified %v; want %s at %d", rep.Oldest, rep.Unverified, a.ID, a.Exports[1].Seq)
	}
	for _, d := range rep.Deleted {
		if d.Generation != a.ID || d.Key == a.Meta {
			t.Errorf("deleted %s", d.Key)
		}
	}
	res := restoreAt(t, r, filepath.Join(dir, "a"), restore.Target{Generation: a.ID, Seq: a.Last, HasSeq: true})
	if fmt.Sprint(res.Families) != fmt.Sprint(a.States[a.Last]) {
		t.Fatalf("generation %s restores to %v, want %v", a.ID, res.Families, a.States[a.Last])
	}
}

// TestApplyNothingVerifies: with no export that verifies nothing is
// deleted, and Apply says so with an error.
func TestApplyNothingVerifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, built := bucket(t)
	for _, b := range built {
		for _, e := range b.Exports {
			damageBody(t, r, e.Key)
		}
	}
	before := keys(t, r)
	rep, err := retention.Apply(ctx, r, retention.Policy{MaxAge: time.Hour}, day(4), nil)
	if !errors.Is(err, retention.ErrNothingVerifies) {
		t.Fatalf("err = %v, want ErrNothingVerifies", err)
	}
	if rep.Objects != 0 || !slices.Equal(keys(t, r), before) || len(rep.Unverified) != 4 {
		t.Fatalf("deleted %v, unverified %v", rep.Deleted, rep.Unverified)
	}
}

// TestApplyVerifyCache: with a cache, an export is verified once, a
// damaged one is remembered as damaged, and an object replaced under the
// same key is verified again.
func TestApplyVerifyCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _, built := bucket(t)
	newest := built[1].Exports[1]
	original := conformance.Get(t, r, newest.Key)
	damageBody(t, r, newest.Key)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	verified := func() int {
		n := strings.Count(logs.String(), "retention: verifying export")
		logs.Reset()
		return n
	}
	policy := retention.Policy{KeepExports: 1, DryRun: true, Cache: retention.NewVerifyCache()}
	uncached := policy
	uncached.Cache = nil
	for round, tc := range []struct {
		policy   retention.Policy
		verified int
	}{{policy, 2}, {policy, 0}, {uncached, 2}, {policy, 0}} {
		rep, err := retention.Apply(ctx, r, tc.policy, day(4), log)
		if err != nil {
			t.Fatal(err)
		}
		if n := verified(); n != tc.verified {
			t.Errorf("round %d verified %d exports, want %d", round, n, tc.verified)
		}
		if len(rep.Unverified) != 1 || rep.Oldest.ExportSeq != built[1].Exports[0].Seq {
			t.Errorf("round %d: unverified %v, oldest %+v", round, rep.Unverified, rep.Oldest)
		}
	}
	// Repaired: a new object under the same key is verified again, and is
	// the base now.
	if err := r.Put(ctx, newest.Key, bytes.NewReader(original), int64(len(original))); err != nil {
		t.Fatal(err)
	}
	rep, err := retention.Apply(ctx, r, policy, day(4), log)
	if err != nil {
		t.Fatal(err)
	}
	if n := verified(); n != 1 {
		t.Errorf("after the repair verified %d exports, want 1 (the repaired one)", n)
	}
	if len(rep.Unverified) != 0 || rep.Oldest.ExportSeq != newest.Seq {
		t.Errorf("after the repair: unverified %v, oldest %+v", rep.Unverified, rep.Oldest)
	}
}
