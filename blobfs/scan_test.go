package blobfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// put writes a blob file where Stalwart would and returns its hash.
func put(t *testing.T, l Layout, payload string) Hash {
	t.Helper()
	h := Sum([]byte(payload))
	p := l.Path(h)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, Encode([]byte(payload), false), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

func scanAll(t *testing.T, l Layout) (names []string, foreign []string) {
	t.Helper()
	err := l.Scan(context.Background(), func(e Entry) error {
		names = append(names, e.Name())
		if e.IsHash && l.Path(e.Hash) != e.Path {
			t.Errorf("entry %s: Path(hash) = %s", e.Path, l.Path(e.Hash))
		}
		return nil
	}, ScanOptions{Foreign: func(f Foreign) {
		rel, _ := filepath.Rel(l.Root, f.Path)
		foreign = append(foreign, filepath.ToSlash(rel))
	}})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	slices.Sort(foreign)
	return names, foreign
}

func TestScan(t *testing.T) {
	for _, depth := range []int{0, 1, 2, 5} {
		t.Run(fmt.Sprint("depth ", depth), func(t *testing.T) {
			l, _ := NewLayout(t.TempDir(), depth)
			var want []string
			for i := range 50 {
				want = append(want, put(t, l, fmt.Sprintf("message %d", i)).Name())
			}
			// A non-hash key, as Stalwart's spam model.
			model := []byte("STALWART_SPAM_CLASSIFIER_MODEL.lz4")
			mp := l.KeyPath(model)
			if err := os.MkdirAll(filepath.Dir(mp), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(mp, []byte{1, 2, 3}, 0o644); err != nil {
				t.Fatal(err)
			}
			want = append(want, KeyName(model))
			slices.Sort(want)
			got, foreign := scanAll(t, l)
			if !slices.Equal(got, want) {
				t.Fatalf("scan found %d blobs %v, want %d", len(got), got, len(want))
			}
			if len(foreign) != 0 {
				t.Fatalf("foreign entries in a clean store: %v", foreign)
			}
		})
	}
}

func TestScanReportsForeign(t *testing.T) {
	l, _ := NewLayout(t.TempDir(), 2)
	h := put(t, l, "kept")
	mkfile := func(rel string) {
		p := filepath.Join(l.Root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := Sum([]byte("elsewhere"))
	misplaced := fmt.Sprintf("%x/%x/%s", other[0]^1, other[1], other.Name()) // another prefix's directory
	mkfile("README")                                                         // at the root of a depth-2 store
	mkfile("05/1/" + Sum([]byte("a")).Name())                                // zero-padded level
	mkfile("zz/1/x")                                                         // not hex
	mkfile(misplaced)
	mkfile(fmt.Sprintf("%x/%x/notbase32!", h[0], h[1]))
	got, foreign := scanAll(t, l)
	if !slices.Equal(got, []string{h.Name()}) {
		t.Fatalf("blobs = %v, want only %s", got, h.Name())
	}
	want := []string{"05", "README", misplaced, fmt.Sprintf("%x/%x/notbase32!", h[0], h[1]), "zz"}
	slices.Sort(want)
	if !slices.Equal(foreign, want) {
		t.Fatalf("foreign = %v, want %v", foreign, want)
	}
	// Scan touched nothing.
	for _, rel := range want {
		if _, err := os.Stat(filepath.Join(l.Root, rel)); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
	}
}

func TestScanWrongDepthFindsNothing(t *testing.T) {
	root := t.TempDir()
	l2, _ := NewLayout(root, 2)
	put(t, l2, "one")
	l1, _ := NewLayout(root, 1)
	got, foreign := scanAll(t, l1)
	if len(got) != 0 || len(foreign) == 0 {
		t.Fatalf("depth-1 scan of a depth-2 store: blobs %v, foreign %v", got, foreign)
	}
	if !strings.Contains(strings.Join(foreign, " "), "/") {
		t.Fatalf("foreign entries %v are not the misplaced level directories", foreign)
	}
}

func TestEntryAtAndScanDir(t *testing.T) {
	l, _ := NewLayout(t.TempDir(), 2)
	h := put(t, l, "here")
	e, ok, err := l.EntryAt(l.Path(h))
	if err != nil || !ok || e.Hash != h || !e.IsHash || e.Size != int64(len("here"))+1 {
		t.Fatalf("EntryAt = %+v %v %v", e, ok, err)
	}
	for _, p := range []string{filepath.Join(l.Root, "x"), filepath.Dir(l.Path(h)), filepath.Join(filepath.Dir(l.Path(h)), Sum([]byte("gone")).Name())} {
		if _, ok, err := l.EntryAt(p); ok || err != nil {
			t.Errorf("EntryAt(%s) = %v %v, want not a blob", p, ok, err)
		}
	}
	var n int
	if err := l.ScanDir(context.Background(), filepath.Dir(filepath.Dir(l.Path(h))), func(Entry) error { n++; return nil }, ScanOptions{}); err != nil || n != 1 {
		t.Fatalf("ScanDir of the first level: %d blobs, %v", n, err)
	}
	if err := l.ScanDir(context.Background(), filepath.Join(l.Root, "zz"), nil, ScanOptions{}); err == nil {
		t.Fatal("ScanDir outside the layout succeeded")
	}
}
