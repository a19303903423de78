package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// writer is a minimal primary: a few families, puts, merges, range deletes.
type writer struct {
	st *store.Store
	n  int
}

// primaryAndBucket is the start of most agent tests: a temporary
// directory holding a primary with txs transactions written (under
// "primary") and a file replica (under "bucket").
func primaryAndBucket(t *testing.T, txs int) (base, primary string, w *writer, rep uploader.Replica) {
	t.Helper()
	base = t.TempDir()
	primary = filepath.Join(base, "primary")
	w = newWriter(t, primary)
	for i := 0; i < txs; i++ {
		w.tx(t)
	}
	rep, err := uploader.Open(context.Background(), "file://"+filepath.Join(base, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return base, primary, w, rep
}

func newWriter(t *testing.T, dir string) *writer {
	st, err := store.OpenWritable(dir, []string{"n", "l", "p", "t"}, true, func(o *grocksdb.Options) {
		o.SetWriteBufferSize(64 << 10)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &writer{st: st}
}

func (w *writer) tx(t *testing.T) {
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	w.n++
	wb.PutCF(w.st.Handle("p"), []byte(fmt.Sprintf("doc-%06d", w.n)), []byte(fmt.Sprintf("value %d", w.n)))
	wb.MergeCF(w.st.Handle("n"), []byte("counter"), stalwart.EncodeCounter(int64(w.n)))
	wb.PutCF(w.st.Handle("l"), []byte(fmt.Sprintf("chg-%06d", w.n)), []byte{1, 2, 3})
	if w.n%10 == 0 {
		wb.DeleteRangeCF(w.st.Handle("l"), []byte("chg-"), []byte(fmt.Sprintf("chg-%06d", w.n-5)))
	}
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	if err := w.st.DB.Write(wo, wb); err != nil {
		t.Fatal(err)
	}
}

func (w *writer) flush(t *testing.T) {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	for _, f := range w.st.Families {
		if err := w.st.DB.FlushCF(f.Handle, fo); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *writer) digests(t *testing.T) []segment.FamilySum {
	d, err := w.st.Digests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitShipped waits until the replica can restore sequence seq.
func waitShipped(t *testing.T, r uploader.Replica, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		gens, _, err := catalog.List(context.Background(), r, nil)
		if err == nil && len(gens) > 0 {
			if newest, ok := gens[len(gens)-1].NewestRestorable(); ok && newest >= seq {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sequence %d never became restorable from the replica", seq)
}

func TestRunThenRestoreEqualsPrimary(t *testing.T) {
	base, primary, w, rep := primaryAndBucket(t, 50)
	a, err := agent.New(agent.Config{DB: primary, Scratch: filepath.Join(base, "scratch"), Replica: rep, Poll: 20 * time.Millisecond, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	var marks []struct {
		seq uint64
		d   []segment.FamilySum
	}
	for round := 0; round < 4; round++ {
		for i := 0; i < 40; i++ {
			w.tx(t)
		}
		if round == 1 {
			w.flush(t)
		}
		seq := w.st.DB.GetLatestSequenceNumber()
		marks = append(marks, struct {
			seq uint64
			d   []segment.FamilySum
		}{seq, w.digests(t)})
		waitShipped(t, rep, seq)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, m := range marks {
		to := filepath.Join(base, fmt.Sprintf("restore-%d", i))
		res, err := restore.Run(context.Background(), restore.Options{Replica: rep, To: to, Target: restore.Target{Seq: m.seq, HasSeq: true}, Digests: true})
		if err != nil {
			t.Fatalf("restore at %d: %v", m.seq, err)
		}
		if res.Seq != m.seq {
			t.Fatalf("restore at %d reached %d", m.seq, res.Seq)
		}
		if fmt.Sprint(res.Families) != fmt.Sprint(m.d) {
			t.Fatalf("restore at %d differs from the primary:\n got %v\nwant %v", m.seq, res.Families, m.d)
		}
	}
}

// testLogger sends the agent's log to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
