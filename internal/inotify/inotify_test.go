//go:build linux

package inotify

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
}

// waitFor waits until n events arrived, then a little longer for stray
// ones, and returns them.
func (r *recorder) waitFor(t *testing.T, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		k := len(r.got)
		r.mu.Unlock()
		if k >= n || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(50 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func opName(op Op) string {
	s := ""
	for _, x := range []struct {
		op   Op
		name string
	}{{Create, "create"}, {CloseWrite, "close-write"}, {MovedTo, "moved-to"}} {
		if op&x.op != 0 {
			s += x.name
		}
	}
	return s
}

// TestWatcher: only the asked-for events arrive (no event per write), a
// directory added from the handler is watched from then on, and each
// event names its directory.
func TestWatcher(t *testing.T) {
	root, elsewhere := t.TempDir(), t.TempDir()
	var rec recorder
	var w *Watcher
	ready := make(chan struct{})
	w, err := New(func(e Event) {
		<-ready
		if e.IsDir && e.Op&Create != 0 {
			if err := w.Add(filepath.Join(e.Dir, e.Name), CloseWrite|MovedTo); err != nil {
				t.Error(err)
			}
		}
		rel, _ := filepath.Rel(root, filepath.Join(e.Dir, e.Name))
		rec.add(opName(e.Op) + " " + filepath.ToSlash(rel))
	}, func() { t.Error("event queue overflow in a quiet directory") })
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	defer w.Close()
	if err := w.Add(root, Create|CloseWrite); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(root, "a"))
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := f.Write([]byte("chunk")); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if err := os.Mkdir(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := rec.waitFor(t, 3); len(got) != 3 {
		t.Fatalf("events before the sub-directory's files: %q", got)
	}
	if err := os.WriteFile(filepath.Join(root, "sub", "b"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(elsewhere, "c")
	if err := os.WriteFile(moved, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, filepath.Join(root, "sub", "c")); err != nil {
		t.Fatal(err)
	}
	got := rec.waitFor(t, 5)
	want := []string{"create a", "close-write a", "create sub", "close-write sub/b", "moved-to sub/c"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// TestWatcherRemovedDir: a watched directory that is removed is dropped
// without an event, and Add on something that is not a directory fails.
func TestWatcherRemovedDir(t *testing.T) {
	root := t.TempDir()
	var rec recorder
	w, err := New(func(e Event) { rec.add(e.Name) }, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sub := filepath.Join(root, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(sub, Create); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		w.mu.Lock()
		n := len(w.dirs)
		w.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a removed directory is still watched")
		}
	}
	if got := rec.waitFor(t, 0); len(got) != 0 {
		t.Fatalf("events %q for a removed directory", got)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(filepath.Join(root, "file"), Create); err == nil {
		t.Fatal("watching a plain file succeeded")
	}
}
