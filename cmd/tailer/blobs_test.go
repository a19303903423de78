package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
)

var blobSpec = replicatest.Spec{Tx: 12, ExportsAfter: []int{0, 6}, PerSegment: 4, Blobs: true}

// TestRestoreBlobsCLI: restore --blobs-to writes the blobs and says so; a
// blob missing from the replica fails the command naming it and its
// account (store and blobs kept), or with --allow-partial is PARTIAL and
// exit 0; the flags are checked before anything is read.
func TestRestoreBlobsCLI(t *testing.T) {
	rep := replicatest.Build(t, blobSpec)
	dir := t.TempDir()
	code, out, errs := runTailer(t, cliCase{args: []string{"restore", "--replica", rep.URL, "--to", filepath.Join(dir, "a"), "--blobs-to", filepath.Join(dir, "a-blobs")}})
	newest := rep.Batches[len(rep.Batches)-1].Last
	want := len(rep.BlobsAt[newest])
	if code != 0 || !strings.Contains(out, "blobs: ") || !strings.Contains(out, " written (") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, " 0 missing") || !strings.Contains(out, fmt.Sprintf("blobs: %d referenced", want)) {
		t.Fatalf("want %d blobs referenced, none missing:\n%s", want, out)
	}

	lost := rep.BlobsAt[newest][0]
	rep.Delete(t, layout.BlobKey(lost))
	checkFailure(t, cliCase{args: []string{"restore", "--replica", rep.URL, "--to", filepath.Join(dir, "b"), "--blobs-to", filepath.Join(dir, "b-blobs")},
		want:   []string{"1 blobs", "not in the replica", "--allow-partial", "kept"},
		stdout: []string{"MISSING blob " + lost.Name() + " of account 7 (collection 0, document "}})
	code, out, errs = runTailer(t, cliCase{args: []string{"restore", "--replica", rep.URL, "--to", filepath.Join(dir, "c"), "--blobs-to", filepath.Join(dir, "c-blobs"), "--allow-partial"}})
	if code != 0 || !strings.HasPrefix(out, "PARTIAL blob restore") && !strings.Contains(out, "\nPARTIAL blob restore") || !strings.Contains(out, lost.Name()) {
		t.Fatalf("--allow-partial: exit %d\n%s\n%s", code, out, errs)
	}

	for _, c := range []cliCase{
		{name: "stalwart format", args: []string{"restore", "--replica", rep.URL, "--format", "stalwart", "--out", filepath.Join(dir, "d"), "--blobs-to", filepath.Join(dir, "d-blobs")}, want: []string{"--blobs-to is for --format tailer"}},
		{name: "depth alone", args: []string{"restore", "--replica", rep.URL, "--to", filepath.Join(dir, "e"), "--blob-depth", "3"}, want: []string{"--blob-depth goes with --blobs-to"}},
		{name: "negative depth", args: []string{"restore", "--replica", rep.URL, "--to", filepath.Join(dir, "e"), "--blobs-to", filepath.Join(dir, "e-blobs"), "--blob-depth", "-1"}, want: []string{"--blob-depth -1"}},
		{name: "inside the store", args: []string{"restore", "--replica", rep.URL, "--to", filepath.Join(dir, "f"), "--blobs-to", filepath.Join(dir, "f", "blobs")}, want: []string{"overlap"}},
	} {
		t.Run(c.name, func(t *testing.T) { checkFailure(t, c) })
	}
}

// TestVerifyBlobsCLI: verify prints the blob summary, and a missing blob
// fails it naming the blob object.
func TestVerifyBlobsCLI(t *testing.T) {
	rep := replicatest.Build(t, blobSpec)
	code, out, errs := runTailer(t, cliCase{args: []string{"verify", "--replica", rep.URL}})
	if code != 0 || !strings.Contains(out, fmt.Sprintf("blobs: %d objects", len(rep.BlobFiles))) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	newest := rep.Batches[len(rep.Batches)-1].Last
	lost := layout.BlobKey(rep.BlobsAt[newest][0])
	rep.Delete(t, lost)
	checkFailure(t, cliCase{args: []string{"verify", "--replica", rep.URL}, want: []string{"verify found 1 problem"},
		stdout: []string{"BAD   " + lost + ": missing: referenced by"}})
}

// TestListBlobsCLI: list shows the blob objects' count and size.
func TestListBlobsCLI(t *testing.T) {
	rep := replicatest.Build(t, blobSpec)
	code, out, errs := runTailer(t, cliCase{args: []string{"list", "--replica", rep.URL}})
	if code != 0 || !strings.Contains(out, fmt.Sprintf("blobs: %d objects, ", len(rep.BlobFiles))) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	plain := replicatest.Build(t, replicatest.Spec{Tx: 4})
	if _, out, _ := runTailer(t, cliCase{args: []string{"list", "--replica", plain.URL}}); strings.Contains(out, "blobs:") {
		t.Fatalf("a replica without blobs lists blobs:\n%s", out)
	}
}
