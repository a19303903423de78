//go:build linux

package blobfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// stalwartWrite writes a blob as Stalwart's FsStore does: create the
// level directories, File::create, the bytes in two writes, no rename,
// no fsync.
func stalwartWrite(t *testing.T, l Layout, payload []byte, between func()) Hash {
	t.Helper()
	h := Sum(payload)
	p := l.Path(h)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	data := Encode(payload, false)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	between()
	if _, err := f.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	return h
}

type seen struct {
	mu       sync.Mutex
	complete map[Hash]bool
	calls    int
}

func (s *seen) found(e Entry) error {
	r, err := Verify(e.Path, e.Hash)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if r.Status == Complete {
		s.complete[e.Hash] = true
	}
	return nil
}

func (s *seen) has(h Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.complete[h]
}

func waitSeen(t *testing.T, s *seen, h Hash) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !s.has(h); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("blob %s was not reported complete", h.Name())
		}
	}
}

// TestWatchReportsNewBlobs: with the periodic scan an hour away, only the
// directory watch can report blobs written after the first scan, in new
// level directories too, and a file is complete when reported for its
// close even though it was seen half written.
func TestWatchReportsNewBlobs(t *testing.T) {
	for _, depth := range []int{0, 2} {
		t.Run(fmt.Sprint("depth ", depth), func(t *testing.T) {
			l, _ := NewLayout(t.TempDir(), depth)
			before := stalwartWrite(t, l, []byte("already there"), func() {})
			s := &seen{complete: map[Hash]bool{}}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Watch(ctx, s.found, WatchOptions{Every: time.Hour}) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			waitSeen(t, s, before)
			for i := range 20 {
				h := stalwartWrite(t, l, fmt.Appendf(nil, "message %d", i), func() { time.Sleep(time.Millisecond) })
				waitSeen(t, s, h)
			}
		})
	}
}

func TestWatchStopsOnFoundError(t *testing.T) {
	l, _ := NewLayout(t.TempDir(), 1)
	boom := errors.New("boom")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- l.Watch(ctx, func(Entry) error { return boom }, WatchOptions{Every: time.Hour})
	}()
	// Found by the first scan or by the watch, whichever runs first.
	stalwartWrite(t, l, []byte("x"), func() {})
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Fatalf("Watch = %v, want found's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not stop on found's error")
	}
}

func TestWatchBadOptions(t *testing.T) {
	l, _ := NewLayout(filepath.Join(t.TempDir(), "missing"), 2)
	if err := l.Watch(context.Background(), func(Entry) error { return nil }, WatchOptions{Every: time.Second}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Watch of a missing root = %v", err)
	}
	if err := l.Watch(context.Background(), func(Entry) error { return nil }, WatchOptions{}); err == nil {
		t.Fatal("Watch without an interval succeeded")
	}
}
