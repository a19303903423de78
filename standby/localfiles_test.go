package standby

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/replicatest"
)

// TestFollowKeepsTheWorkDir: a follower's --work is the operator's: it
// and what it holds (even entries named like the follower's own) stay
// through a first restore, applied segments and a stop; the standby
// itself is private to the user running follow.
func TestFollowKeepsTheWorkDir(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 8, ExportsAfter: []int{2}, PerSegment: 2})
	segs := rep.Segments
	hidden := stash{t, rep, t.TempDir()}
	hidden.hide(segs[len(segs)-1].Key)
	work := t.TempDir()
	keep := []string{"unrelated", filepath.Join("restore", "keep"), filepath.Join("segments", "keep")}
	for _, k := range keep {
		p := filepath.Join(work, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("not tailer's"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	to := filepath.Join(t.TempDir(), "standby")
	fw := startFollowWith(t, FollowOptions{Replica: rep.R, To: to, Work: work})
	fw.waitSeq(rep.Generation, segs[len(segs)-2].Last)
	hidden.reveal(segs[len(segs)-1].Key)
	fw.waitSeq(rep.Generation, segs[len(segs)-1].Last)
	if _, err := fw.stop(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keep {
		if b, err := os.ReadFile(filepath.Join(work, k)); err != nil || string(b) != "not tailer's" {
			t.Errorf("%s in --work is gone or changed: %q, %v", k, b, err)
		}
	}
	if entries, _ := os.ReadDir(work); len(entries) != 3 {
		t.Errorf("--work holds %v after following, want only what was there", entries)
	}
	st, err := os.Stat(to)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != owned.DirMode {
		t.Errorf("mode of the standby %s = %v, want %v", to, st.Mode().Perm(), owned.DirMode)
	}
	for _, p := range []string{StatePath(to), pathsFor(to, "").lock} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != owned.FileMode {
			t.Errorf("mode of %s = %v, want %v", p, st.Mode().Perm(), owned.FileMode)
		}
	}
}

// TestFollowLeavesForeignDirsInItsWay: a directory at the follower's
// build or old path that is no store tailer built is refused, not
// removed.
func TestFollowLeavesForeignDirsInItsWay(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 4, ExportsAfter: []int{2}, PerSegment: 2})
	for _, which := range []string{"build", "old"} {
		t.Run(which, func(t *testing.T) {
			to := filepath.Join(t.TempDir(), "standby")
			p := pathsFor(to, "")
			dir := map[string]string{"build": p.build, "old": p.old}[which]
			notes := filepath.Join(dir, "notes.txt")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(notes, []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Progress means the standby was built: stop there.
			_, err := Follow(ctx, FollowOptions{Replica: rep.R, To: to, Progress: func(FollowStatus) { cancel() }})
			if err == nil || !strings.Contains(err.Error(), "move it away") {
				t.Fatalf("err = %v, want a refusal naming %s", err, dir)
			}
			if _, err := os.Stat(notes); err != nil {
				t.Fatalf("%s was removed: %v", notes, err)
			}
		})
	}
}
