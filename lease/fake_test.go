package lease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/tailer-backup/tailer/uploader"
)

// fakeReplica holds the lease object in memory and injects faults into
// conditional writes. Only GetVersioned and PutIf are used by the lease.
type fakeReplica struct {
	mu      sync.Mutex
	data    []byte
	version int // 0: absent
	mode    putMode
	// attempts counts PutIf calls; each one is also sent on attempted
	// (if set) once decided, so tests wait on events, not on time.
	attempts  int
	attempted chan putMode
	// deadlines records whether each PutIf's context had a deadline.
	deadlines []bool
}

type putMode int

const (
	putOK          putMode = iota
	putFail                // every write fails before reaching the object
	putHang                // every write hangs until its context ends
	putApplyNoResp         // the next write is applied, then its response is lost
)

var errInjected = errors.New("injected: connection reset by peer")

func (f *fakeReplica) setMode(m putMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = m
}

func (f *fakeReplica) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.version == 0 {
		return nil, "", fmt.Errorf("fake: get %s: %w", key, uploader.ErrNotFound)
	}
	return append([]byte(nil), f.data...), strconv.Itoa(f.version), nil
}

func (f *fakeReplica) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	f.mu.Lock()
	f.attempts++
	_, hasDeadline := ctx.Deadline()
	f.deadlines = append(f.deadlines, hasDeadline)
	mode := f.mode
	notify := func() {
		if f.attempted != nil {
			select {
			case f.attempted <- mode:
			default:
			}
		}
	}
	switch mode {
	case putFail:
		f.mu.Unlock()
		notify()
		return "", errInjected
	case putHang:
		f.mu.Unlock()
		<-ctx.Done()
		notify()
		return "", fmt.Errorf("fake: put %s: %w", key, ctx.Err())
	}
	defer f.mu.Unlock()
	defer notify()
	cur := ""
	if f.version != 0 {
		cur = strconv.Itoa(f.version)
	}
	if cur != ifVersion {
		return "", fmt.Errorf("fake: put %s: %w", key, uploader.ErrPreconditionFailed)
	}
	f.data = append([]byte(nil), data...)
	f.version++
	if mode == putApplyNoResp {
		f.mode = putOK
		return "", errInjected
	}
	return strconv.Itoa(f.version), nil
}

func (f *fakeReplica) Put(context.Context, string, io.Reader, int64) error {
	return errors.New("fake: Put not used by the lease")
}
func (f *fakeReplica) Get(context.Context, string) (io.ReadCloser, error) {
	return nil, errors.New("fake: Get not used by the lease")
}
func (f *fakeReplica) List(context.Context, string) ([]uploader.ObjectInfo, error) {
	return nil, errors.New("fake: List not used by the lease")
}
func (f *fakeReplica) Delete(context.Context, string) error {
	return errors.New("fake: Delete not used by the lease")
}
func (f *fakeReplica) ReadRange(context.Context, string, int64, int64) ([]byte, error) {
	return nil, errors.New("fake: ReadRange not used by the lease")
}
func (f *fakeReplica) ListAfter(context.Context, string, string) ([]uploader.ObjectInfo, error) {
	return nil, errors.New("fake: ListAfter not used by the lease")
}
func (f *fakeReplica) String() string   { return "fake://lease" }
func (f *fakeReplica) Identity() string { return f.String() }

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
