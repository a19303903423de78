//go:build linux

package walpin

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestRunPinsOnCreateEvent checks that a WAL file is pinned when it
// appears, not at the next periodic scan: the scan interval is an hour,
// so only the directory watch can pin the second file, and it stays
// readable after the "primary" deletes it.
func TestRunPinsOnCreateEvent(t *testing.T) {
	primary, pins := t.TempDir(), t.TempDir()
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(primary, name), []byte("wal "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pinned := func(name string) bool {
		_, err := os.Stat(filepath.Join(pins, name))
		return err == nil
	}
	waitPinned := func(name string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !pinned(name); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s was not pinned", name)
			}
		}
	}
	write("000001.log")
	p, err := New(primary, pins, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, time.Hour); close(done) }()
	defer func() { cancel(); <-done }()

	// The first scan runs after the watch is set up: once it pinned the
	// first file, every later file can only be pinned by an event.
	waitPinned("000001.log")
	write("000002.log")
	write("OPTIONS-000003") // not a WAL file: never pinned
	waitPinned("000002.log")
	if err := os.Remove(filepath.Join(primary, "000002.log")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(pins, "000002.log"))
	if err != nil || string(got) != "wal 000002.log" {
		t.Fatalf("pinned copy after the primary deleted it: %q, %v", got, err)
	}
	if pinned("OPTIONS-000003") {
		t.Fatal("a file that is not a WAL file was pinned")
	}
	// The link is made before the pin is recorded: wait for the record.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		files, _ := p.Stats()
		if files == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pins held: %d, want 2", files)
		}
	}
}

// TestWatchCreatesOnlyCreations: appends to a file (a WAL being written)
// raise no callback, creations and renames into the directory do, once
// each.
func TestWatchCreatesOnlyCreations(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	var mu sync.Mutex
	var got []string
	stop, err := watchCreates(dir, func(name string) {
		mu.Lock()
		got = append(got, name)
		mu.Unlock()
	}, func() { t.Error("event queue overflow in a quiet directory") })
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "000010.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := f.Write([]byte("batch")); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	moved := filepath.Join(elsewhere, "000011.log")
	if err := os.WriteFile(moved, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, filepath.Join(dir, "000011.log")); err != nil {
		t.Fatal(err)
	}
	want := []string{"000010.log", "000011.log"}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(50 * time.Millisecond) // room for any stray event to arrive
	stop()
	if !slices.Equal(got, want) {
		t.Fatalf("callbacks for %q, want %q (one per file created, none per write)", got, want)
	}
}
