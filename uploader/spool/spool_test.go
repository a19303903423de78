package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func openSpool(t *testing.T, dir string) *Spool {
	t.Helper()
	s, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pendingKeys(t *testing.T, s *Spool) []string {
	t.Helper()
	ents, err := s.Pending()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(ents))
	for i, e := range ents {
		out[i] = e.Key
	}
	return out
}

func wantPending(t *testing.T, s *Spool, want ...string) {
	t.Helper()
	if got := pendingKeys(t, s); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("pending = %q, want %q", got, want)
	}
}

// TestSpoolFIFOAcrossReopen: commit order is upload order, also after a
// restart, and new commits go after the old ones.
func TestSpoolFIFOAcrossReopen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "spool", "nested") // created on open
	s := openSpool(t, dir)
	// Names chosen so that key order differs from commit order.
	keys := []string{"gen/segments/0000000000000009-000000000000000a.tseg", "gen/generation.json", "a", "gen/exports/z.texp"}
	for _, k := range keys {
		if err := s.Add(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	wantPending(t, s, keys...)

	s = openSpool(t, dir)
	wantPending(t, s, keys...)
	if err := s.Add("later", []byte("x")); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, append(slices.Clone(keys), "later")...)
	ents, _ := s.Pending()
	for _, e := range ents {
		b, err := os.ReadFile(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		if want := e.Key; e.Key == "later" {
			if string(b) != "x" {
				t.Fatalf("%s holds %q", e.Key, b)
			}
		} else if string(b) != want || e.Size != int64(len(want)) {
			t.Fatalf("%s holds %q (size %d)", e.Key, b, e.Size)
		}
	}
}

// TestSpoolCrashBeforeCommit: an object whose producer died before Commit
// is not pending after a restart, and its temp file is cleaned up.
func TestSpoolCrashBeforeCommit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSpool(t, dir)
	if err := s.Add("committed", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	f, err := s.Create("half-written")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, "committed") // not queued before Commit
	// "Crash": the process disappears without Commit or Abort.
	s = openSpool(t, dir)
	wantPending(t, s, "committed")
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("spool dir holds %d files after reopen, want only the committed one", len(ents))
	}
}

func TestSpoolAbortAndMisuse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSpool(t, dir)
	f, err := s.Create("k")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("data"))
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := f.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("Write after Abort succeeded")
	}
	wantPending(t, s)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("Abort left %d files", len(ents))
	}

	g, err := s.Create("g")
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("g"))
	if err := g.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := g.Abort(); err != nil { // the deferred-cleanup idiom
		t.Fatalf("Abort after Commit: %v", err)
	}
	if err := g.Commit(); err == nil {
		t.Fatal("second Commit succeeded")
	}
	wantPending(t, s, "g")

	for _, bad := range []string{"", "/abs", "../x", "a//b", strings.Repeat("x/", 100) + "y"} {
		if _, err := s.Create(bad); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		}
	}
}

func TestSpoolRemoveAndBytes(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	if n, err := s.Bytes(); err != nil || n != 0 {
		t.Fatalf("Bytes = %d, %v", n, err)
	}
	s.Add("a", []byte("123"))
	s.Add("b", []byte("12345"))
	f, _ := s.Create("uncommitted")
	f.Write(make([]byte, 1000))
	defer f.Abort()
	if n, err := s.Bytes(); err != nil || n != 8 {
		t.Fatalf("Bytes = %d, %v; want 8 (uncommitted data excluded)", n, err)
	}
	ents, _ := s.Pending()
	if err := s.Remove(ents[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ents[0]); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	wantPending(t, s, "b")
	if n, _ := s.Bytes(); n != 5 {
		t.Fatalf("Bytes = %d, want 5", n)
	}
	other := SpoolEntry{Key: "x", Path: filepath.Join(t.TempDir(), "x")}
	if err := s.Remove(other); err == nil {
		t.Fatal("Remove of a file outside the spool succeeded")
	}
}

// TestSpoolConcurrentCommits: every commit gets its own place in the queue.
func TestSpoolConcurrentCommits(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := s.Add(fmt.Sprintf("w%d/%02d", w, i), []byte("x")); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	got := pendingKeys(t, s)
	if len(got) != 200 {
		t.Fatalf("%d pending, want 200", len(got))
	}
	// Per producer, commit order is preserved.
	last := map[string]string{}
	for _, k := range got {
		w, i, _ := strings.Cut(k, "/")
		if i <= last[w] && last[w] != "" {
			t.Fatalf("%s after %s/%s", k, w, last[w])
		}
		last[w] = i
	}
}
