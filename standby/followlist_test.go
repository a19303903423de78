package standby

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/internal/promtest"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/uploader"
)

// listCounter counts the keys a follower's listings return, full and
// narrow, as a bucket would bill and page them.
type listCounter struct {
	uploader.Replica
	mu                     sync.Mutex
	fullCalls, fullKeys    int
	narrowCalls, narrowKey int
}

func (c *listCounter) List(ctx context.Context, prefix string) ([]uploader.ObjectInfo, error) {
	objs, err := c.Replica.List(ctx, prefix)
	c.mu.Lock()
	c.fullCalls++
	c.fullKeys += len(objs)
	c.mu.Unlock()
	return objs, err
}

func (c *listCounter) ListAfter(ctx context.Context, prefix, after string) ([]uploader.ObjectInfo, error) {
	objs, err := c.Replica.ListAfter(ctx, prefix, after)
	c.mu.Lock()
	c.narrowCalls++
	c.narrowKey += len(objs)
	c.mu.Unlock()
	return objs, err
}

func (c *listCounter) counts() (fullCalls, fullKeys, narrowCalls, narrowKeys int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fullCalls, c.fullKeys, c.narrowCalls, c.narrowKey
}

// TestFollowListsOnlyWhatIsNew: once following, each interval lists only
// the segments after the standby's position and any newer generation,
// not the replica's whole history: over many idle and busy intervals the
// keys listed stay near the number of new segments, while the standby
// still ends equal to the source.
func TestFollowListsOnlyWhatIsNew(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 60, PerSegment: 2})
	segs, gen := rep.Segments, rep.Generation // 30 segments
	hidden := stash{t, rep, t.TempDir()}
	hidden.hide(keysOf(segs[20:])...)
	c := &listCounter{Replica: rep.R}
	to := filepath.Join(t.TempDir(), "standby")
	fw := startFollowOn(t, c, to)
	fw.waitSeq(gen, segs[19].Last)
	full0, _, narrow0, _ := c.counts()
	for _, s := range segs[20:] {
		hidden.reveal(s.Key)
		fw.waitSeq(gen, s.Last)
	}
	st, err := fw.stop()
	if err != nil {
		t.Fatal(err)
	}
	checkStandby(t, rep, to, segs[29].Last)
	full, fullKeys, narrow, narrowKeys := c.counts()
	t.Logf("status %+v; full listings %d (%d keys), narrow listings %d (%d keys)", st, full, fullKeys, narrow, narrowKeys)
	// The standby was built (one listing by the restore) before full0 was
	// read; the first step after a build lists in full once more.
	if full-full0 > 1 {
		t.Fatalf("%d full listings while following 10 new segments in order, want at most the first step's", full-full0)
	}
	if narrow-narrow0 < 10 {
		t.Fatalf("%d narrow listings for 10 new segments", narrow-narrow0)
	}
	// Each new segment is listed by the steps that see it before it is
	// applied: a few times at most, never the 30-odd keys of the history.
	if narrowKeys > 3*10 {
		t.Fatalf("narrow listings returned %d keys for 10 new segments", narrowKeys)
	}
}

// TestFollowMetrics: the follower's metrics say where the standby stands
// and that it still reaches the replica.
func TestFollowMetrics(t *testing.T) {
	rep := replicatest.Build(t, replicatest.Spec{Tx: 12, PerSegment: 3})
	segs, gen := rep.Segments, rep.Generation
	hidden := stash{t, rep, t.TempDir()}
	hidden.hide(segs[len(segs)-1].Key)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	statuses := make(chan FollowStatus, 100)
	done := make(chan error, 1)
	go func() {
		_, err := Follow(ctx, FollowOptions{Replica: rep.R, To: filepath.Join(t.TempDir(), "standby"), Interval: 10 * time.Millisecond,
			Registry: reg, Progress: func(s FollowStatus) {
				select {
				case statuses <- s:
				default:
				}
			}})
		done <- err
	}()
	var last FollowStatus
	reach := func(want uint64) {
		t.Helper()
		for deadline := time.After(20 * time.Second); last.Seq != want; {
			select {
			case last = <-statuses:
			case err := <-done:
				t.Fatalf("follower ended: %v", err)
			case <-deadline:
				t.Fatalf("follower never reached %d of %s (at %+v)", want, gen, last)
			}
		}
	}
	reach(segs[len(segs)-2].Last) // built from the export and the segments there
	want := segs[len(segs)-1].Last
	hidden.reveal(segs[len(segs)-1].Key)
	reach(want) // applied
	// The success stamp is set after the step that applied the last batch.
	for deadline := time.Now().Add(10 * time.Second); promtest.Value(t, reg, "tailer_follow_last_success_timestamp_seconds") == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no successful step recorded")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"tailer_follow_seq":                            float64(want),
		"tailer_follow_batches_applied_total":          float64(last.Batches),
		"tailer_follow_rebuilds_total":                 1,
		"tailer_follow_last_capture_timestamp_seconds": float64(last.CapturedUnixMs) / 1000,
		"tailer_follow_step_errors_total":              0,
	} {
		if got := promtest.Value(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if last.Batches == 0 || last.CapturedUnixMs == 0 {
		t.Fatalf("status %+v: the test applied no batch after the build", last)
	}
}
