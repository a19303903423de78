package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/testbucket"
	"github.com/tailer-backup/tailer/uploader"
)

// TestPruneAndCompactCLI: a replica with an old generation and a current
// one of per-poll segments; prune and compact print what they would do,
// then do it.
func TestPruneAndCompactCLI(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "bucket")
	url := "file://" + dir
	r, err := uploader.Open(ctx, url, uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := now.Add(-10 * 24 * time.Hour)
	if _, err := testbucket.Build(ctx, r, testbucket.Generation{ID: "20261101T000000.000Z-aaaaaa", Created: old,
		Segments: []testbucket.Segment{{Batches: 2, Capture: old.Add(time.Minute)}}}); err != nil {
		t.Fatal(err)
	}
	start := now.Truncate(time.Hour).Add(-3 * time.Hour)
	var segs []testbucket.Segment
	for i := range 12 {
		segs = append(segs, testbucket.Segment{Batches: 1, Capture: start.Add(time.Duration(i) * 10 * time.Second)})
	}
	cur, err := testbucket.Build(ctx, r, testbucket.Generation{ID: "20261120T000000.000Z-bbbbbb", Created: now.Add(-72 * time.Hour), Segments: segs})
	if err != nil {
		t.Fatal(err)
	}
	count := func() (gens, segments int) {
		gs, _, err := catalog.List(ctx, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			segments += len(g.Segments)
		}
		return len(gs), segments
	}

	for _, tc := range []struct {
		args  []string
		want  []string
		gens  int
		segs  int
		fails string
	}{
		{[]string{"prune", "--replica", url}, nil, 2, 13, "no retention rule"},
		{[]string{"prune", "--replica", url, "--retention", "7x"}, nil, 2, 13, "--retention"},
		{[]string{"prune", "--replica", url, "--retention", "2d", "--dry-run"},
			[]string{"would delete 3 objects", "1 generations whole", "would delete generations/20261101T000000.000Z-aaaaaa/generation.json",
				"oldest restorable point kept: generation " + cur.ID}, 2, 13, ""},
		{[]string{"prune", "--replica", url, "--retention", "2d"}, []string{"deleted 3 objects"}, 1, 12, ""},
		{[]string{"prune", "--replica", url, "--retain-exports", "1"}, []string{"nothing to delete"}, 1, 12, ""},
		{[]string{"compact", "--replica", url, "--live-edge", "0", "--levels", "1m,1h", "--dry-run"},
			[]string{"would merge 12 segments", "into 1", "1h0m0s window from " + start.UTC().Format(time.RFC3339)}, 1, 12, ""},
		{[]string{"compact", "--replica", url, "--levels", "1h,1m"}, nil, 1, 12, "increasing order"},
		{[]string{"compact", "--replica", url, "--live-edge", "0"}, []string{"merged 12 segments", "written and verified", "kept 12 merged narrow segments"}, 1, 13, ""},
		{[]string{"compact", "--replica", url, "--live-edge", "0", "--grace", "0"}, []string{"nothing to merge", "deleted 12 narrow segments"}, 1, 1, ""},
	} {
		out, err := runCLI(t, tc.args...)
		if tc.fails != "" {
			if err == nil || !strings.Contains(err.Error(), tc.fails) {
				t.Fatalf("%v: err = %v, want %q", tc.args, err, tc.fails)
			}
		} else if err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
		if g, s := count(); g != tc.gens || s != tc.segs {
			t.Fatalf("%v: %d generations, %d segments; want %d, %d\n%s", tc.args, g, s, tc.gens, tc.segs, out)
		}
	}
}

func TestPruneCompactHelp(t *testing.T) {
	for _, c := range []string{"prune", "compact"} {
		out, err := runCLI(t, c, "--help")
		if err != nil || !strings.Contains(out, "Examples:") || !strings.Contains(out, "--dry-run") {
			t.Fatalf("%s --help: %v\n%s", c, err, out)
		}
	}
}
