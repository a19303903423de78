package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/store"
)

// writeSome opens the (stopped) primary, writes n batches, records a mark
// and closes it: the primary's owner (Stalwart) came back and wrote.
func writeSome(t *testing.T, dir string, n int, tag string) loadgen.Mark {
	t.Helper()
	st, err := store.OpenWritable(dir, stalwart.Families016, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	for i := 0; i < n; i++ {
		wb := grocksdb.NewWriteBatch()
		wb.PutCF(st.Handle("p"), []byte(fmt.Sprintf("%s-%04d", tag, i)), []byte(tag))
		wb.MergeCF(st.Handle("n"), []byte("lineage"), stalwart.EncodeCounter(1))
		if err := st.DB.Write(wo, wb); err != nil {
			t.Fatal(err)
		}
		wb.Destroy()
	}
	sums, err := st.Digests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return loadgen.Mark{Seq: st.DB.GetLatestSequenceNumber(), Families: sums}
}

// TestLineageBreaks swaps the store under a running tailer: first, by
// renaming directories, for an older copy of itself (same identity,
// sequence numbers go backwards: the primary was restored), then, file by
// file inside the same directory, for a brand-new store (new identity).
// Each must start a new generation (and never let RocksDB follow the
// swapped MANIFEST, which aborts it), and restores on every side of each
// break must equal the store at that point.
func TestLineageBreaks(t *testing.T) {
	e := newEnv(t, backends()[0], 11)
	e.load(300)
	e.startTailer()
	e.load(200)
	before := e.mark()
	e.waitRestorable(before.Seq)
	dir := e.gen.Dir()
	if err := e.gen.Close(); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(e.dir, "primary-copy")
	if out, err := exec.Command("cp", "-a", dir, old).CombinedOutput(); err != nil {
		t.Fatalf("copy the primary: %v %s", err, out)
	}
	ahead := writeSome(t, dir, 200, "ahead")
	e.waitRestorable(ahead.Seq)

	// Restore the primary from the older copy, and write on it.
	swap(t, dir, old)
	restored := writeSome(t, dir, 50, "restored")
	if restored.Seq >= ahead.Seq {
		t.Fatalf("the restored primary is at %d, not behind %d: the test proves nothing", restored.Seq, ahead.Seq)
	}
	waitGenerations(t, e, 2, "swapped by rename")
	e.waitRestorable(restored.Seq)

	// Replace the store with a new one (new IDENTITY).
	fresh := filepath.Join(e.dir, "fresh")
	g2, err := loadgen.Open(loadgen.Config{Dir: fresh, Seed: 12, WriteBufferSize: 256 << 10, MaxTotalWALSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g2.Run(context.Background(), 150, 0); err != nil {
		t.Fatal(err)
	}
	if err := g2.Close(); err != nil {
		t.Fatal(err)
	}
	replaceInPlace(t, dir, fresh)
	replaced := writeSome(t, dir, 30, "replaced")
	waitGenerations(t, e, 3, "", "restored in place", "identity")
	e.waitRestorable(replaced.Seq)
	e.stopTailer()

	gens := e.generations()
	for _, c := range []struct {
		m   loadgen.Mark
		gen int
	}{{before, 0}, {ahead, 0}, {restored, 1}, {replaced, 2}} {
		res, err := e.restoreBy2(c.m.Seq, gens[c.gen].ID)
		if err != nil {
			t.Fatalf("restore seq %d of generation %d: %v", c.m.Seq, c.gen, err)
		}
		if err := loadgen.CompareMark(c.m, res); err != nil {
			t.Fatalf("restore seq %d of generation %d: %v", c.m.Seq, c.gen, err)
		}
	}
}

// swap replaces dir by src (the old dir is moved aside), as an operator
// restoring or replacing Stalwart's store would.
func swap(t *testing.T, dir, src string) {
	t.Helper()
	aside := fmt.Sprintf("%s.aside-%d", dir, time.Now().UnixNano())
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(src, dir); err != nil {
		t.Fatal(err)
	}
}

// replaceInPlace empties dir and moves src's files into it: the
// directory stays the same inode, as after an untar or rsync restore.
func replaceInPlace(t *testing.T, dir, src string) {
	t.Helper()
	old, _ := os.ReadDir(dir)
	for _, f := range old {
		if err := os.RemoveAll(filepath.Join(dir, f.Name())); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := os.ReadDir(src)
	for _, f := range files {
		if err := os.Rename(filepath.Join(src, f.Name()), filepath.Join(dir, f.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// waitGenerations waits for generation n and checks that its reason names
// one of the given causes.
func waitGenerations(t *testing.T, e *env, n int, reasons ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if gens := e.generations(); len(gens) >= n {
			meta := readMeta(t, e, gens[n-1].MetaKey)
			for _, r := range reasons {
				if r != "" && strings.Contains(meta.Reason, r) {
					return
				}
			}
			t.Fatalf("generation %d started because %q, want one of %q", n, meta.Reason, reasons)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no generation %d (%q) after a minute", n, reasons)
}
