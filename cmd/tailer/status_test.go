package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/spool"
)

// TestStatus runs `tailer status` on a replica whose newest batch was
// captured hours ago: the lag is reported, --max-lag below it exits 2 with
// one clear line, above it exits 0; --json is parseable; an unreadable
// replica among several exits 1; a --db of another store is noticed.
func TestStatus(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 8})
	newest := rep.Segments[len(rep.Segments)-1]
	age := time.Since(time.Date(2026, 11, 22, 21, 30, 8, 0, time.UTC)) // the 8th batch's capture time

	code, out, errOut := runTailer(t, cliCase{args: []string{"status", "--replica", rep.URL}})
	if code != 0 {
		t.Fatalf("status exited %d:\n%s%s", code, out, errOut)
	}
	for _, w := range []string{rep.Generation, "seq " + strconv.FormatUint(newest.Last, 10), "2026-11-22T21:30:08.000Z", "lag", "an idle primary looks behind too", "writer      none"} {
		if !strings.Contains(out, w) {
			t.Errorf("status output lacks %q:\n%s", w, out)
		}
	}

	code, out, errOut = runTailer(t, cliCase{args: []string{"status", "--replica", rep.URL, "--max-lag", "1h"}})
	if code != 2 || !strings.Contains(out, ", BEHIND (max 1h0m0s)") || !strings.Contains(errOut, "tailer: "+rep.URL+" is ") || !strings.Contains(errOut, "behind (more than --max-lag 1h0m0s)") {
		t.Fatalf("status --max-lag 1h on a replica %s behind: exit %d, want 2 and a BEHIND line:\n%s%s", age, code, out, errOut)
	}
	if code, out, errOut = runTailer(t, cliCase{args: []string{"status", "--replica", rep.URL, "--max-lag", "480h"}}); code != 0 || !strings.Contains(out, ", ok (max 480h0m0s)") {
		t.Fatalf("status --max-lag 480h: exit %d, want 0:\n%s%s", code, out, errOut)
	}

	code, out, _ = runTailer(t, cliCase{args: []string{"status", "--replica", rep.URL, "--json"}})
	var got []replicaStatus
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || len(got) != 1 {
		t.Fatalf("status --json: exit %d, %v:\n%s", code, err, out)
	}
	if g := got[0]; g.Seq != newest.Last || g.Generation != rep.Generation || g.Key != newest.Key || g.LagSeconds < age.Seconds()-60 || g.Behind {
		t.Fatalf("status --json: %+v, want seq %d of %s from %s, lag about %s", g, newest.Last, rep.Generation, newest.Key, age)
	}

	missing := "file://" + filepath.Join(t.TempDir(), "nope")
	checkFailure(t, cliCase{name: "missing replica", args: []string{"status", "--replica", missing}, want: []string{"does not exist"}})
	checkFailure(t, cliCase{name: "--scratch without --db", args: []string{"status", "--replica", rep.URL, "--scratch", t.TempDir()}, want: []string{"--scratch goes with --db"}})

	db := filepath.Join(t.TempDir(), "primary")
	newStore(t, db)
	code, out, errOut = runTailer(t, cliCase{args: []string{"status", "--replica", rep.URL, "--db", db, "--scratch", t.TempDir()}})
	if code != 0 || !strings.Contains(out, "comes from another store") {
		t.Fatalf("status --db of another store: exit %d, want 0 and a note:\n%s%s", code, out, errOut)
	}
}

// TestFollowFlags: --follow refuses what a standby cannot honour.
func TestFollowFlags(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 4})
	to := filepath.Join(t.TempDir(), "standby")
	for _, c := range []cliCase{
		{name: "follow with seq", args: []string{"restore", "--follow", "--replica", rep.URL, "--to", to, "--seq", "3"}, want: []string{"--seq does not go with --follow"}},
		{name: "follow with stalwart format", args: []string{"restore", "--follow", "--replica", rep.URL, "--format", "stalwart", "--out", to}, want: []string{"--format stalwart does not go with --follow"}},
		{name: "follow without to", args: []string{"restore", "--follow", "--replica", rep.URL}, want: []string{"--follow needs --to"}},
		{name: "zero interval", args: []string{"restore", "--follow", "--replica", rep.URL, "--to", to, "--interval", "0s"}, want: []string{"--interval 0s"}},
		{name: "listen without follow", args: []string{"restore", "--replica", rep.URL, "--to", to, "--listen", "127.0.0.1:0"}, want: []string{"--listen goes with --follow"}},
		{name: "listen on a bad address", args: []string{"restore", "--follow", "--replica", rep.URL, "--to", to, "--listen", "256.0.0.1:1"}, want: []string{"--listen 256.0.0.1:1"}},
	} {
		t.Run(c.name, func(t *testing.T) { checkFailure(t, c) })
	}
}

// TestStatusSpools: with --spool, status shows what each replica's spool
// still holds and names the spool directories no given replica owns
// (their recorded replica, what they hold), also in --json mode (stderr).
func TestStatusSpools(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 4})
	root := filepath.Join(t.TempDir(), "spool")
	queue := func(url string, n int) string {
		r, err := uploader.Open(context.Background(), url, uploader.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sp, _, err := spool.OpenReplicaSpool(root, r)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := sp.Add(fmt.Sprintf("generations/g/segments/%d.tseg", i), []byte("12345")); err != nil {
				t.Fatal(err)
			}
		}
		return sp.Dir()
	}
	queue(rep.URL, 1)
	gone := "file://" + filepath.Join(t.TempDir(), "old-bucket")
	orphan := queue(gone, 3)

	code, out, errOut := runTailer(t, cliCase{args: []string{"status", "--replica", rep.URL, "--spool", root}})
	if code != 0 {
		t.Fatalf("status --spool exited %d:\n%s%s", code, out, errOut)
	}
	for _, w := range []string{"spool       1 objects, 5 bytes not yet in the replica", "no given replica owns", orphan, "replica  " + gone, "pending  3 objects, 15 bytes"} {
		if !strings.Contains(out, w) {
			t.Errorf("status --spool output lacks %q:\n%s", w, out)
		}
	}
	code, out, errOut = runTailer(t, cliCase{args: []string{"status", "--replica", rep.URL, "--spool", root, "--json"}})
	var got []replicaStatus
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || len(got) != 1 {
		t.Fatalf("status --spool --json: exit %d, %v:\n%s", code, err, out)
	}
	if sp := got[0].Spool; sp == nil || sp.Objects != 1 || sp.Bytes != 5 {
		t.Fatalf("status --json spool = %+v, want 1 object of 5 bytes", got[0].Spool)
	}
	if !strings.Contains(errOut, "orphaned spool") || !strings.Contains(errOut, orphan) {
		t.Fatalf("status --json does not warn about the orphaned spool on stderr:\n%s", errOut)
	}
	checkFailure(t, cliCase{name: "missing spool", args: []string{"status", "--replica", rep.URL, "--spool", filepath.Join(root, "nope")}, want: []string{"--spool", "not a directory"}})
}
