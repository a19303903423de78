package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/store"
)

// TestSequenceReuseAfterPowerLoss loses the tail of the primary's WAL
// after tailer shipped it, as an OS crash does to writes Stalwart never
// fsynced: the WAL file is truncated in place (the same inode, so WAL
// pins lose it too), the store reopens behind what was shipped, and
// DIFFERENT batches are written over the shipped sequence numbers and
// beyond before tailer starts again. tailer must notice that the store's
// batch at the last shipped sequence number is not the one it shipped and
// start a new generation; continuing would treat the rewritten batches up
// to there as shipped, and the bucket would restore a state that never
// existed. The newest restore must equal the rewritten primary. The same
// must hold when the store is instead swapped for an older copy of itself
// while tailer is stopped (same IDENTITY; its reopened WAL takes a file
// number a WAL pin of the earlier run still holds with the shipped
// batches), with WAL pins and without.
func TestSequenceReuseAfterPowerLoss(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pinInterval time.Duration
		// olderCopy: the store is swapped for a copy taken after kept
		// (an operator restoring a backup while tailer was stopped)
		// instead of losing its WAL tail in place.
		olderCopy bool
		// inExport: tailer starts only after the lost writes, so they
		// are shipped in the base export and no segment follows it.
		inExport bool
	}{
		{"pinned", 0, false, false},
		{"pinning off", -1, false, false},
		{"older copy restored", 0, true, false},
		{"older copy restored, pinning off", -1, true, false},
		{"lost writes in the base export", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			primary := filepath.Join(dir, "primary")
			e := &env{t: t, dir: dir, replica: backends()[0].open(t)}
			t.Cleanup(e.stopTailer)
			run := func() {
				e.runAgent(agent.Config{DB: primary, Poll: 25 * time.Millisecond, PinInterval: tc.pinInterval})
			}

			// RocksDB's default 64 MiB memtables: nothing is flushed, every
			// batch below stays in one WAL file.
			st, err := store.OpenWritable(primary, stalwart.Families016, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { st.Close() }()
			kept := writeBatches(t, st, 50, "kept")
			wal, durable := newestWAL(t, primary)
			backup := filepath.Join(dir, "primary-copy")
			if tc.olderCopy {
				st.Close()
				if out, err := exec.Command("cp", "-a", primary, backup).CombinedOutput(); err != nil {
					t.Fatalf("copy the primary: %v %s", err, out)
				}
				if st, err = store.OpenWritable(primary, stalwart.Families016, false, nil); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.inExport {
				run()
				e.waitRestorable(kept.Seq)
			}
			lost := writeBatches(t, st, 40, "lost")
			if tc.inExport {
				run()
			}
			e.waitRestorable(lost.Seq)
			e.stopTailer()
			if gens := e.generations(); len(gens) != 1 || (len(gens[0].Segments) == 0) != tc.inExport {
				t.Fatalf("before the power loss: %d generations, want one with segments up to %d (or, for the base export case, none)", len(gens), lost.Seq)
			}
			st.Close()

			if tc.olderCopy {
				swap(t, primary, backup)
			} else if err := os.Truncate(wal, durable); err != nil {
				// The power loss: what was written after kept never reached the disk.
				t.Fatal(err)
			}
			st, err = store.OpenWritable(primary, stalwart.Families016, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.DB.GetLatestSequenceNumber(); got != kept.Seq {
				t.Fatalf("after the power loss the store is at %d, want %d: the test proves nothing", got, kept.Seq)
			}
			rewritten := writeBatches(t, st, 60, "rewritten")
			if rewritten.Seq <= lost.Seq {
				t.Fatalf("the rewritten store is at %d, not past the shipped %d: the test proves nothing", rewritten.Seq, lost.Seq)
			}

			run()
			e.waitRestorable(rewritten.Seq)
			e.stopTailer()
			gens := e.generations()
			if len(gens) != 2 {
				t.Fatalf("%d generations after the store reused sequence numbers, want a new one", len(gens))
			}
			if reason := readMeta(t, e, gens[1].MetaKey).Reason; !strings.Contains(reason, "differs from the one shipped") {
				t.Fatalf("generation 2 started because %q, want the reused sequence numbers named", reason)
			}
			e.checkRestore(rewritten)
		})
	}
}

// writeBatches writes n batches of two records (a put and a counter
// merge) tagged tag into st and returns a mark of the store after them.
func writeBatches(t *testing.T, st *store.Store, n int, tag string) loadgen.Mark {
	t.Helper()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	for i := 0; i < n; i++ {
		wb := grocksdb.NewWriteBatch()
		wb.PutCF(st.Handle("p"), []byte(fmt.Sprintf("%s-%04d", tag, i)), []byte(tag))
		wb.MergeCF(st.Handle("n"), []byte("reuse"), stalwart.EncodeCounter(1))
		err := st.DB.Write(wo, wb)
		wb.Destroy()
		if err != nil {
			t.Fatal(err)
		}
	}
	sums, err := st.Digests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return loadgen.Mark{Seq: st.DB.GetLatestSequenceNumber(), Families: sums}
}

// newestWAL returns the path and size of the store's newest WAL file.
func newestWAL(t *testing.T, dir string) (string, int64) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var best uint64
	name := ""
	for _, en := range ents {
		num, ok := strings.CutSuffix(en.Name(), ".log")
		if n, err := strconv.ParseUint(num, 10, 64); ok && err == nil && n >= best {
			best, name = n, en.Name()
		}
	}
	if name == "" {
		t.Fatalf("no WAL file in %s", dir)
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name), fi.Size()
}
