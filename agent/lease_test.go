package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/lease"
	"github.com/tailer-backup/tailer/uploader"
)

// leaseFaults wraps a replica: once failing is set, every lease write
// fails and every upload hangs until its context ends. It records uploads
// that started, or were still running, at or after the expiry recorded in
// the last lease record the replica accepted: from then on another tailer
// may take the prefix over, so the holder must not be writing.
type leaseFaults struct {
	uploader.Replica

	mu      sync.Mutex
	failing bool
	expires time.Time // of the last lease record written
	hung    int       // uploads held while failing
	late    []string  // uploads running at or after expires
}

func (f *leaseFaults) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	return f.Replica.GetVersioned(ctx, key)
}

func (f *leaseFaults) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	f.mu.Lock()
	failing := f.failing
	f.mu.Unlock()
	if failing {
		return "", errors.New("injected: 503 Service Unavailable")
	}
	v, err := f.Replica.PutIf(ctx, key, data, ifVersion)
	if err == nil {
		var rec lease.Record
		if json.Unmarshal(data, &rec) == nil {
			f.mu.Lock()
			f.expires = rec.Expires
			f.mu.Unlock()
		}
	}
	return v, err
}

func (f *leaseFaults) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	f.mu.Lock()
	failing, expires := f.failing, f.expires
	if failing {
		f.hung++
	}
	f.mu.Unlock()
	if !failing {
		return f.Replica.Put(ctx, key, r, size)
	}
	if !time.Now().Before(expires) {
		f.addLate(key + " (started)")
	}
	<-ctx.Done()
	if !time.Now().Before(expires) {
		f.addLate(key + " (still running)")
	}
	return ctx.Err()
}

func (f *leaseFaults) addLate(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.late = append(f.late, s)
}

// TestLeaseLapseStopsUploads: when every lease renewal fails, the agent
// stops (reporting the expired lease), cancels the upload under way and
// starts no other before the lease could be taken by another tailer.
func TestLeaseLapseStopsUploads(t *testing.T) {
	base, primary, w, file := primaryAndBucket(t, 50)
	rep := &leaseFaults{Replica: file}
	// A wide margin: the check is about order (stop before the recorded
	// expiry), not about how fast this machine is.
	a, err := agent.New(agent.Config{DB: primary, Scratch: filepath.Join(base, "scratch"), Replica: rep, Poll: 20 * time.Millisecond,
		LeaseTTL: 6 * time.Second, LeaseMargin: 2 * time.Second, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber())

	rep.mu.Lock()
	rep.failing = true
	rep.mu.Unlock()
	timeout := time.After(60 * time.Second)
	var runErr error
wait:
	for {
		w.tx(t) // keep segments coming, so there is always something to upload
		select {
		case runErr = <-done:
			break wait
		case <-timeout:
			t.Fatal("the agent kept running after its lease could no longer be renewed")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !errors.Is(runErr, lease.ErrExpired) {
		t.Fatalf("Run = %v, want the expired lease", runErr)
	}
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if len(rep.late) > 0 {
		t.Fatalf("uploads after the lease's recorded expiry %s: %v", rep.expires, rep.late)
	}
	if rep.hung == 0 {
		t.Fatal("no upload was under way while the lease lapsed: the test checked nothing")
	}
}
