package restore

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/changelog"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

var testFamilies = []segment.Family{{ID: 0, Name: "default"}, {ID: 5, Name: "l"}, {ID: 6, Name: "p"}}

// batch builds a two-record batch at seq: a property put and, when
// change > 0, a changelog entry of account 7 with that change id.
func batch(seq uint64, captureMs int64, change uint64) segment.Batch {
	b := wbatch.NewBuilder(seq).Add(wbatch.Record{Op: wbatch.OpPut, CF: 6, Key: []byte{byte(seq)}, Value: []byte("v")})
	if change > 0 {
		key := changelog.EncodeKey(changelog.Key{Account: 7, Collection: changelog.Email, ChangeID: change})
		b.Add(wbatch.Record{Op: wbatch.OpPut, CF: 5, Key: key, Value: changelog.EncodeChangeSet(changelog.ChangeSet{ItemInserts: []uint64{1}})})
	} else {
		b.Add(wbatch.Record{Op: wbatch.OpPut, CF: 6, Key: []byte{byte(seq), 1}, Value: []byte("w")})
	}
	return segment.Batch{Seq: seq, CaptureUnixMs: captureMs, Data: b.Bytes()}
}

// fixtureGen is the generation of fixture, an id as NewGenerationID
// makes them (layout.Parse accepts no other).
const fixtureGen = "20261122T213000.000Z-3f9a1c"

// fixture writes generation fixtureGen: an export at seq 10 (time 1000 ms, account
// 7 at change 3) and two segments of two-record batches:
// 11..16 captured at 2000, 3000, 4000 (changes 4, -, 5) and 17..20 at
// 5000, 6000 (changes 6, 8).
func fixture(t *testing.T) (uploader.Replica, []layout.Generation) {
	t.Helper()
	r, err := uploader.Open(context.Background(), "file://"+filepath.Join(t.TempDir(), "b"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, b []byte) {
		if err := r.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	ew, err := segment.NewExportWriter(&buf, segment.Header{Generation: fixtureGen, FirstSeq: 10, LastSeq: 10, Created: time.UnixMilli(1000), Families: testFamilies})
	if err != nil {
		t.Fatal(err)
	}
	ew.SetAccountChanges(map[uint32]uint64{7: 3})
	if _, err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	put(layout.ExportKey(fixtureGen, 10), buf.Bytes())
	for _, seg := range [][]segment.Batch{
		{batch(11, 2000, 4), batch(13, 3000, 0), batch(15, 4000, 5)},
		{batch(17, 5000, 6), batch(19, 6000, 8)},
	} {
		buf.Reset()
		first, last := seg[0].Seq, seg[len(seg)-1].Seq+1
		sw, err := segment.NewSegmentWriter(&buf, segment.Header{Generation: fixtureGen, FirstSeq: first, LastSeq: last, Created: time.UnixMilli(0), Families: testFamilies})
		if err != nil {
			t.Fatal(err)
		}
		lb := changelog.NewLabeler(5)
		for _, b := range seg {
			if err := lb.Add(b); err != nil {
				t.Fatal(err)
			}
			if err := sw.Append(b); err != nil {
				t.Fatal(err)
			}
		}
		sw.SetLabels(lb.Labels())
		if _, err := sw.Close(); err != nil {
			t.Fatal(err)
		}
		put(layout.SegmentKey(fixtureGen, first, last), buf.Bytes())
	}
	gens, _, err := catalog.List(context.Background(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, gens
}

func TestResolveByTime(t *testing.T) {
	r, gens := fixture(t)
	tests := []struct {
		ms      int64
		want    uint64
		wantErr string
	}{
		{500, 0, "before the oldest restorable point"},
		{1000, 10, ""}, // at the export
		{1999, 10, ""}, // before the first batch
		{2000, 12, ""}, // first batch (11..12) captured exactly then
		{3500, 14, ""}, // inside the first segment: batch 13..14
		{4000, 16, ""}, // end of the first segment
		{4500, 16, ""}, // between segments
		{5999, 18, ""}, // inside the second segment
		{9999, 20, ""}, // after everything: the newest state
	}
	for _, tc := range tests {
		rv := &resolver{ctx: context.Background(), r: r, work: t.TempDir(), got: map[string]string{}}
		res, err := rv.byTime(gens, time.UnixMilli(tc.ms))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("time %d: err %v, want %q", tc.ms, err, tc.wantErr)
			}
			continue
		}
		if err != nil || res.seq != tc.want {
			t.Errorf("time %d: seq %d, err %v; want %d", tc.ms, res.seq, err, tc.want)
		}
		if len(rv.got) > 1 {
			t.Errorf("time %d: downloaded %d segments, want at most the one holding the stop", tc.ms, len(rv.got))
		}
	}
}

func TestResolveByChange(t *testing.T) {
	r, gens := fixture(t)
	tests := []struct {
		change  uint64
		want    uint64
		wantErr string
	}{
		{4, 12, ""},
		{5, 16, ""},
		{6, 18, ""},
		{8, 20, ""},
		{3, 0, "not in the replica"}, // inside the export: no batch to stop after
		{7, 0, "nearest ids it holds: 6 (before) 8 (after)"}, // never written
		{99, 0, "8 (before)"},                                // not yet written
	}
	for _, tc := range tests {
		rv := &resolver{ctx: context.Background(), r: r, work: t.TempDir(), got: map[string]string{}}
		res, err := rv.byChange(gens, 7, tc.change)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("change %d: err %v, want %q", tc.change, err, tc.wantErr)
			}
			continue
		}
		if err != nil || res.seq != tc.want {
			t.Errorf("change %d: seq %d, err %v; want %d", tc.change, res.seq, err, tc.want)
		}
	}
	rv := &resolver{ctx: context.Background(), r: r, work: t.TempDir(), got: map[string]string{}}
	if _, err := rv.byChange(gens, 99, 1); err == nil || !strings.Contains(err.Error(), "no change of that account") {
		t.Errorf("unknown account: %v", err)
	}
}
