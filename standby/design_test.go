package standby

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/docexample"
)

// TestDesignDocFollow checks the follower's files of docs/design.md
// against the code: the documented state file is exactly what writeState
// writes and readState accepts, and the documented paths are the ones the
// follower uses for the documented standby.
func TestDesignDocFollow(t *testing.T) {
	doc := docexample.Load(t, "design.md")
	var st followState
	doc.CheckJSON(t, "tailer-follow.json", &st)
	p := filepath.Join(t.TempDir(), "standby.tailer-follow.json")
	if err := os.WriteFile(p, []byte(doc.Example(t, "tailer-follow.json")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, found, err := readState(p)
	if err != nil || !found || !reflect.DeepEqual(got, st) {
		t.Fatalf("readState of the documented state: %+v, %v, %v", got, found, err)
	}
	if st.Format != followStateVersion {
		t.Errorf("the documented state has format_version %d, the code writes %d", st.Format, followStateVersion)
	}

	paths := doc.Lines(t, "follow-files")
	if len(paths) == 0 {
		t.Fatal("no documented follower paths")
	}
	fp := pathsFor(paths[0], "")
	want := []string{fp.dir, fp.state, fp.lock, fp.build, fp.old, fp.work}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("documented follower paths\n%s\nthe code uses\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
	if StatePath(fp.dir) != fp.state || !strings.HasSuffix(fp.state, ".tailer-follow.json") {
		t.Fatalf("StatePath(%s) = %s", fp.dir, StatePath(fp.dir))
	}
}
