package standby

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/restore"
)

// waitBlobs waits until the blob directory holds every blob the source
// references at seq, each byte for byte, and nothing that is not one of
// the source's blobs (blobs referenced earlier may stay), and the
// follower reports having written them all (the files there but base,
// which were there before it started): its fetch is complete.
func waitBlobs(t *testing.T, fw *follow, base int, rep *replicatest.Replica, l blobfs.Layout, seq uint64) map[blobfs.Hash][]byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := blobFilesWhile(t, l, true)
		missing := 0
		for _, h := range rep.BlobsAt[seq] {
			if !bytes.Equal(got[h], rep.BlobFiles[h]) {
				missing++
			}
		}
		for h, b := range got {
			if !bytes.Equal(b, rep.BlobFiles[h]) {
				t.Fatalf("blob %s in the standby's directory is not the source's", h)
			}
		}
		fw.mu.Lock()
		written := fw.last.BlobsWritten
		fw.mu.Unlock()
		if missing == 0 && written == len(got)-base {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby's blob directory lacks %d of the %d blobs referenced at %d (%d files, the follower wrote %d)", missing, len(rep.BlobsAt[seq]), seq, len(got), written)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFollowKeepsBlobsCurrent: a standby with --blobs-to gets every blob
// its first restore references, then those each applied batch commits;
// blobs purged since stay; a clean stop records the directory as in step,
// a restart continues it, and a restart without it or with another one is
// refused. A blob missing from the replica is counted and the follower
// goes on.
func TestFollowKeepsBlobsCurrent(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 24, ExportsAfter: []int{0, 12}, PerSegment: 4, Blobs: true})
	segs, gen := rep.Segments, rep.Generation
	hidden := stash{t, rep, t.TempDir()}
	hidden.hide(keysOf(segs[2:])...)
	hidden.hide(rep.Exports[1].Key)
	dir := t.TempDir()
	to := filepath.Join(dir, "standby")
	l, _ := blobfs.NewLayout(filepath.Join(dir, "blobs"), 2)
	opts := FollowOptions{Replica: rep.R, To: to, Blobs: &restore.BlobOptions{Dir: l.Root, Depth: 2}}

	fw := startFollowWith(t, opts)
	fw.waitSeq(gen, segs[1].Last)
	waitBlobs(t, fw, 0, rep, l, segs[1].Last)
	purged := blobfs.Sum(replicatest.BlobPayload(8)) // referenced at segs[1], purged by transaction 10
	hidden.reveal(segs[2].Key, segs[3].Key)
	fw.waitSeq(gen, segs[3].Last)
	got := waitBlobs(t, fw, 0, rep, l, segs[3].Last)
	if got[purged] == nil {
		t.Fatal("a blob purged since was removed from the standby's directory")
	}
	if _, err := fw.stop(); err != nil {
		t.Fatal(err)
	}
	s, _, err := readState(StatePath(to))
	if err != nil || s.BlobsDir != l.Root || !s.BlobsSynced {
		t.Fatalf("state after a clean stop: %+v, %v", s, err)
	}

	for name, o := range map[string]*restore.BlobOptions{"without": nil, "another": {Dir: filepath.Join(dir, "other"), Depth: 2}, "another depth": {Dir: l.Root, Depth: 3}} {
		bad := opts
		bad.Blobs = o
		fw := startFollowWith(t, bad)
		if _, err := fw.stop(); !errors.Is(err, restore.ErrBlobDir) {
			t.Errorf("restart %s the blob directory: %v, want ErrBlobDir", name, err)
		}
	}

	// Transaction 19 (in segs[4]) commits a blob the replica lost.
	lost := blobfs.Sum(replicatest.BlobPayload(19))
	rep.Delete(t, layout.BlobKey(lost))
	before := len(got)
	fw = startFollowWith(t, opts)
	hidden.reveal(keysOf(segs[4:])...)
	hidden.reveal(rep.Exports[1].Key)
	newest := segs[len(segs)-1].Last
	fw.waitSeq(gen, newest)
	fw.wait("the lost blob counted", func(s FollowStatus) bool { return s.BlobsMissing == 1 })
	got = waitBlobsExcept(t, fw, before, rep, l, newest, lost)
	if got[lost] != nil {
		t.Fatal("a blob the replica lost appeared")
	}
	st, err := fw.stop()
	if err != nil || st.BlobsMissing != 1 {
		t.Fatalf("stop: %+v, %v", st, err)
	}
	blobFiles(t, l) // no temporary file left behind
	if s, _, _ := readState(StatePath(to)); s.BlobsSynced {
		t.Fatal("a blob directory missing a blob is recorded as in step")
	}
}

// waitBlobsExcept is waitBlobs for a blob set with one blob known lost.
func waitBlobsExcept(t *testing.T, fw *follow, base int, rep *replicatest.Replica, l blobfs.Layout, seq uint64, lost blobfs.Hash) map[blobfs.Hash][]byte {
	t.Helper()
	saved := rep.BlobsAt[seq]
	var want []blobfs.Hash
	for _, h := range saved {
		if h != lost {
			want = append(want, h)
		}
	}
	if len(want) == len(saved) {
		t.Fatalf("blob %s is not referenced at %d", lost, seq)
	}
	rep.BlobsAt[seq] = want
	defer func() { rep.BlobsAt[seq] = saved }()
	return waitBlobs(t, fw, base, rep, l, seq)
}
