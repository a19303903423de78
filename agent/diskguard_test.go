package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/internal/diskguard"
	"github.com/tailer-backup/tailer/internal/promtest"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader/spool"
)

// files lists the regular files under dir whose names satisfy keep.
func files(t *testing.T, dir string, keep func(string) bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && keep(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

// TestDiskGuard: when the (injected) free space of the store's filesystem
// falls below --min-free, tailer drops its WAL pins and puts nothing new
// into the spool while the primary goes on writing (and deletes its WAL);
// when space recovers, the gap starts a new generation, and every point
// before the pause and after the new generation restores equal to the
// primary.
func TestDiskGuard(t *testing.T) {
	base, primary, w, rep := primaryAndBucket(t, 50)
	scratch := filepath.Join(base, "scratch")
	const total = 100 << 30
	var free atomic.Uint64
	free.Store(total / 2)
	min := diskguard.Threshold{Percent: 5}
	reg := prometheus.NewRegistry()
	stop := runFor(t, agent.Config{DB: primary, Scratch: scratch, Replica: rep, Poll: 20 * time.Millisecond, Registry: reg, Log: testLogger(t),
		MinFree: &min, FreeSpace: func(string) (diskguard.Space, error) { return diskguard.Space{Free: free.Load(), Total: total}, nil }})
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	mark := func() (uint64, []segment.FamilySum) { return w.st.DB.GetLatestSequenceNumber(), w.digests(t) }
	for i := 0; i < 40; i++ {
		w.tx(t)
	}
	before, beforeD := mark()
	waitShipped(t, rep, before)
	waitFor(t, "WAL pins", func() bool { return len(files(t, filepath.Join(scratch, "wal-pins"), isWAL)) > 0 })

	free.Store(total/20 - 1) // just below 5%
	waitFor(t, "the disk guard", func() bool { return promtest.Value(t, reg, "tailer_disk_guard_active") == 1 })
	spooled := func() int {
		return len(files(t, filepath.Join(scratch, "spool"), func(n string) bool { return !strings.HasPrefix(n, ".") && n != spool.SpoolOwnerFile })) +
			len(files(t, filepath.Join(base, "bucket"), func(n string) bool {
				return strings.HasSuffix(n, ".tseg") || strings.HasSuffix(n, ".texp") || n == "generation.json"
			}))
	}
	objects, shipped := spooled(), promtest.Value(t, reg, "tailer_last_shipped_seq")
	for round := 0; round < 3; round++ {
		for i := 0; i < 40; i++ {
			w.tx(t)
		}
		w.flush(t)                         // the primary deletes the WAL holding these batches
		time.Sleep(100 * time.Millisecond) // several polls
		if pins := files(t, filepath.Join(scratch, "wal-pins"), isWAL); len(pins) > 0 {
			t.Fatalf("below --min-free, tailer still pins WAL files: %v", pins)
		}
		if n, s := spooled(), promtest.Value(t, reg, "tailer_last_shipped_seq"); n != objects || s != shipped {
			t.Fatalf("below --min-free, objects went from %d to %d, last shipped seq from %v to %v; want nothing new", objects, n, shipped, s)
		}
	}
	if got := promtest.Value(t, reg, "tailer_disk_guard_trips_total"); got != 1 {
		t.Fatalf("tailer_disk_guard_trips_total = %v, want 1", got)
	}

	free.Store(total/20 + total/200) // above 5% but below 6%: still paused
	time.Sleep(100 * time.Millisecond)
	if promtest.Value(t, reg, "tailer_disk_guard_active") != 1 || spooled() != objects {
		t.Fatalf("the guard let go before free space passed --min-free + 1%%")
	}
	free.Store(total / 2)
	waitFor(t, "a new generation after the gap", func() bool { return promtest.Value(t, reg, "tailer_generations_total") >= 2 })
	if promtest.Value(t, reg, "tailer_disk_guard_active") != 0 || promtest.Value(t, reg, "tailer_gaps_total") < 1 {
		t.Fatalf("after recovery: guard %v, gaps %v; want 0 and a gap", promtest.Value(t, reg, "tailer_disk_guard_active"), promtest.Value(t, reg, "tailer_gaps_total"))
	}
	for i := 0; i < 40; i++ {
		w.tx(t)
	}
	after, afterD := mark()
	waitShipped(t, rep, after)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	stop = nil
	for _, m := range []struct {
		seq uint64
		d   []segment.FamilySum
	}{{before, beforeD}, {after, afterD}} {
		res, err := restore.Run(context.Background(), restore.Options{Replica: rep, To: filepath.Join(base, fmt.Sprintf("restore-%d", m.seq)), Target: restore.Target{Seq: m.seq, HasSeq: true}, Digests: true})
		if err != nil || res.Seq != m.seq || fmt.Sprint(res.Families) != fmt.Sprint(m.d) {
			t.Fatalf("restore at %d: reached %d, %v, equal to the primary: %v", m.seq, res.Seq, err, fmt.Sprint(res.Families) == fmt.Sprint(m.d))
		}
	}
}
