package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/promtest"
)

// TestWithoutPinning runs tailer with WAL pinning switched off and with
// its scratch directory on another filesystem than the store (hard links
// fail): batches are then read from the store's WAL files in place by
// tailer's own reader (never RocksDB's GetUpdatesSince on the secondary,
// which aborts under load), nothing is linked, and the replica restores
// the primary equal. A WAL file deleted before it was read would be a
// gap and a new generation; with RocksDB's default WAL cap there should
// be none, and then every mark must restore equal too.
func TestWithoutPinning(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pinInterval time.Duration
		scratchRoot func(t *testing.T, store string) string
	}{
		{"switched off", -1, func(t *testing.T, _ string) string { return t.TempDir() }},
		{"scratch on another filesystem", 0, otherFilesystem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: 11, WriteBufferSize: 256 << 10, MaxTotalWALSize: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			scratch := filepath.Join(tc.scratchRoot(t, g.Dir()), "scratch")
			e := &env{t: t, dir: dir, gen: g, replica: backends()[0].open(t)}
			e.load(100)
			reg := prometheus.NewRegistry()
			e.runAgent(agent.Config{Scratch: scratch, Poll: 25 * time.Millisecond, PinInterval: tc.pinInterval, Registry: reg})
			defer e.stopTailer()
			e.waitRestorable(g.Store().DB.GetLatestSequenceNumber())
			var marks []loadgen.Mark
			for i := 0; i < 5; i++ {
				e.load(400)
				marks = append(marks, e.mark())
			}
			final := marks[len(marks)-1]
			e.waitRestorable(final.Seq)
			read, gaps := promtest.Value(t, reg, "tailer_batches_from_pins_total"), promtest.Value(t, reg, "tailer_gaps_total")
			pins, _ := filepath.Glob(filepath.Join(scratch, "wal-pins", "*.log"))
			t.Logf("%v batches read in place, %v gaps, %d pins", read, gaps, len(pins))
			if read == 0 {
				t.Fatal("no batch was read by tailer's WAL reader")
			}
			if len(pins) != 0 || promtest.Value(t, reg, "tailer_wal_pins") != 0 {
				t.Fatalf("%d WAL files linked into scratch with pinning off", len(pins))
			}
			e.checkRestore(final)
			if gaps > 0 {
				t.Logf("%v gaps: the earlier marks may lie in a lost range; only the last is checked", gaps)
				return
			}
			for i, m := range marks[:len(marks)-1] {
				t.Run(fmt.Sprint("mark", i), func(t *testing.T) { e.checkRestore(m) })
			}
		})
	}
}

// otherFilesystem returns a fresh directory on a filesystem other than
// the store's (/dev/shm, a tmpfs, where there is one), or skips.
func otherFilesystem(t *testing.T, store string) string {
	var a, b syscall.Stat_t
	if err := syscall.Stat(store, &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat("/dev/shm", &b); err != nil || a.Dev == b.Dev {
		t.Skip("no second filesystem (/dev/shm) to put the scratch directory on")
	}
	d, err := os.MkdirTemp("/dev/shm", "tailer-scratch-")
	if err != nil {
		t.Skipf("cannot use /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
