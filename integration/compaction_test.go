package integration

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/compaction"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/retention"
)

// TestCompactionWhileTailing: a compactor runs every 100 ms with a
// one-second live edge while tailer ships a Stalwart-like load, merging
// per-poll segments into 1 s windows behind the head; then everything is
// merged into hour windows and the narrow copies deleted, tailer is
// restarted on the compacted bucket and continues its generation, and
// retention keeps the one chain. Every mark restores equal to the primary
// throughout.
func TestCompactionWhileTailing(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b, 7)
			e.load(200)
			e.startTailer()

			live, err := compaction.New(e.replica, compaction.Options{Levels: []time.Duration{time.Second, time.Hour},
				LiveEdge: time.Second, Grace: -1}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			// merged and runs are written by the compaction goroutine.
			var merged, runs atomic.Int64
			var runErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					rep, err := live.Run(ctx, time.Now())
					runs.Add(1)
					merged.Add(int64(len(rep.Merged)))
					if err != nil && runErr == nil {
						runErr = err
					}
				}
			}()
			// Small bursts, so that each second holds several segments, for at
			// least 3 s and until compaction has merged behind the live edge
			// (bounded: a loaded machine makes fewer segments per second).
			var marks []loadgen.Mark
			deadline, hardDeadline := time.Now().Add(3*time.Second), time.Now().Add(30*time.Second)
			for i := 1; time.Now().Before(deadline) || merged.Load() < 2 && time.Now().Before(hardDeadline); i++ {
				e.load(20)
				if i%12 == 0 {
					marks = append(marks, e.mark())
				}
				time.Sleep(40 * time.Millisecond)
			}
			marks = append(marks, e.mark())
			e.waitRestorable(marks[len(marks)-1].Seq)
			close(stop)
			wg.Wait()
			if runErr != nil {
				t.Fatalf("compaction while tailing: %v", runErr)
			}
			if merged.Load() < 2 {
				t.Fatalf("%d compaction runs behind the live edge merged %d segment runs, want at least 2", runs.Load(), merged.Load())
			}
			t.Logf("%d runs merged %d segment runs while tailing", runs.Load(), merged.Load())
			e.checkRestore(marks[len(marks)-1])

			// Everything, head included, into hour windows; narrow copies gone.
			e.stopTailer()
			rep, err := compaction.Run(ctx, e.replica, compaction.Options{Levels: []time.Duration{time.Second, time.Hour},
				Grace: -1}, time.Now().Add(2*time.Hour), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			gens := e.generations()
			if len(gens) != 1 {
				t.Fatalf("%d generations", len(gens))
			}
			if n := len(gens[0].Segments); n > 3 || rep.Pending != 0 {
				t.Fatalf("after compacting to hours: %d segments, %d pending (report %+v)", n, rep.Pending, rep)
			}
			for _, m := range marks {
				e.checkRestore(m)
			}

			// tailer resumes on the compacted bucket, in the same generation.
			e.startTailer()
			e.load(100)
			last := e.mark()
			e.waitRestorable(last.Seq)
			e.stopTailer()
			if gens := e.generations(); len(gens) != 1 {
				t.Fatalf("tailer started %d generations after compaction", len(gens))
			}
			e.checkRestore(last)
			e.checkRestore(marks[0])

			// Retention of one export keeps the whole chain.
			prep, err := retention.Apply(ctx, e.replica, retention.Policy{KeepExports: 1}, time.Now(), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if prep.Objects != 0 {
				t.Fatalf("retention deleted %v from the only chain", prep.Deleted)
			}
			e.checkRestore(last)
		})
	}
}
