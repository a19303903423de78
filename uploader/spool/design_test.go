package spool

import (
	"context"
	"github.com/tailer-backup/tailer/uploader"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/docexample"
)

// TestDesignDocSpool checks the spool examples of docs/design.md against
// the code: replica.json is what OpenReplicaSpool writes for the replica
// it names, the directory is named by that replica's identity, and each
// entry's name is the one Commit gives the n-th object, for a documented
// key.
func TestDesignDocSpool(t *testing.T) {
	doc := docexample.Load(t, "design.md")
	var owner SpoolOwner
	doc.CheckJSON(t, SpoolOwnerFile, &owner)
	r, err := uploader.Open(context.Background(), owner.Replica, uploader.Options{AccessKeyID: "doc", SecretAccessKey: "doc"})
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != owner.Replica || r.Identity() != owner.Identity {
		t.Fatalf("%s opens as %s with identity %s, not the documented %s, %s", owner.Replica, r, r.Identity(), owner.Replica, owner.Identity)
	}
	keys := doc.Lines(t, "keys")
	n := uint64(0)
	for _, p := range doc.Lines(t, "spool") {
		root, rest, _ := strings.Cut(p, "/")
		dir, name, _ := strings.Cut(rest, "/")
		if root != "spool" || dir != spoolDirName(owner.Identity) {
			t.Fatalf("%s: want spool/%s/..., the directory of %s", p, spoolDirName(owner.Identity), owner.Identity)
		}
		if name == SpoolOwnerFile {
			continue
		}
		seq, key, ok := parseSpoolName(name)
		if !ok || seq != n || spoolName(seq, key) != name {
			t.Fatalf("%s is not the name of spool entry %d", name, n)
		}
		if !slices.Contains(keys, key) {
			t.Errorf("spool entry %s queues %s, which the documented keys do not show", name, key)
		}
		n++
	}
	if n == 0 {
		t.Fatal("the spool example shows no entry")
	}
	// And the real thing: OpenReplicaSpool writes that file there.
	sp, _, err := OpenReplicaSpool(t.TempDir(), r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(sp.Dir(), SpoolOwnerFile))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(sp.Dir()) != spoolDirName(owner.Identity) || strings.TrimSpace(string(b)) != strings.TrimSpace(doc.Example(t, SpoolOwnerFile)) {
		t.Fatalf("OpenReplicaSpool wrote %s/%s:\n%s", filepath.Base(sp.Dir()), SpoolOwnerFile, b)
	}
}
