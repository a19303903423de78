package testbucket

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/uploader"
)

// TestRestoreEqualsModel checks the fixture itself: what it uploads
// restores, through RocksDB, to the state its model says.
func TestRestoreEqualsModel(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, err := uploader.Open(ctx, "file://"+filepath.Join(dir, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	b, err := Build(ctx, r, Generation{ID: "20261123T100000.000Z-aaaaaa", Created: t0, Segments: []Segment{
		{Batches: 3, Capture: t0.Add(time.Second), Step: time.Second},
		{Batches: 2, Capture: t0.Add(5 * time.Second), Step: time.Second, ExportAfter: true},
		{Batches: 4, Capture: t0.Add(9 * time.Second), Step: time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Exports) != 2 || len(b.Segments) != 3 || b.Last != 100+9*3 {
		t.Fatalf("built %+v", b)
	}
	for i, seq := range []uint64{100, 103, 115, 127} {
		res, err := restore.Run(ctx, restore.Options{Replica: r, To: filepath.Join(dir, fmt.Sprint("r", i)),
			Target: restore.Target{Seq: seq, HasSeq: true}, Digests: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Seq != seq || fmt.Sprint(res.Families) != fmt.Sprint(b.States[seq]) {
			t.Fatalf("restore at %d reached %d:\n got %v\nwant %v", seq, res.Seq, res.Families, b.States[seq])
		}
	}
}
