package loadgen

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
)

// blobGen runs a generator with a blob directory and checks, between the
// writes of every blob file, that the file is incomplete and that k holds
// its temporary link but not yet its commit key (Stalwart's order).
func blobGen(t *testing.T, seed int64, depth, n int) (*Generator, blobfs.Layout) {
	t.Helper()
	blobDir := filepath.Join(t.TempDir(), "blobs")
	var g *Generator
	halfSeen := 0
	g = openGen(t, Config{
		Seed: seed, WriteBufferSize: 256 << 10, BlobDir: blobDir, BlobDepth: depth,
		BetweenBlobWrites: func(path string) {
			h, err := blobfs.ParseName(filepath.Base(path))
			if err != nil {
				t.Fatalf("blob file %s: %v", path, err)
			}
			r, err := blobfs.Verify(path, h)
			if err != nil || r.Status != blobfs.Incomplete {
				t.Fatalf("half-written %s: %+v, %v", path, r, err)
			}
			if _, ok := get(t, g, "k", bloblink.CommitKey(h)); ok {
				t.Fatalf("%s: commit key written before the file", path)
			}
			keys, _ := scan(t, g, "k")
			temp := false
			for _, k := range keys {
				if l, err := bloblink.ParseKey(k); err == nil && l.Hash == h && l.Kind == bloblink.Temporary {
					temp = true
				}
			}
			if !temp {
				t.Fatalf("%s: no temporary link while the file is written", path)
			}
			halfSeen++
		},
	})
	run(t, g, n)
	if halfSeen == 0 {
		t.Fatal("no blob file was written in more than one write")
	}
	l, err := blobfs.NewLayout(blobDir, max(depth, 0))
	if depth == 0 {
		l, err = blobfs.NewLayout(blobDir, blobfs.DefaultDepth)
	}
	if err != nil {
		t.Fatal(err)
	}
	return g, l
}

func TestBlobDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 1500-transaction store with a blob directory: skipped under -short")
	}
	g, l := blobGen(t, 5, 0, 1500)
	if keys, _ := scan(t, g, "t"); len(keys) != 0 {
		t.Fatalf("family t holds %d blobs with a blob directory", len(keys))
	}
	refs, short, err := bloblink.Read(context.Background(), g.Store(), nil)
	if err != nil || short != 0 {
		t.Fatal(err, short)
	}
	markers := map[byte]int{}
	referenced := map[blobfs.Hash]bool{}
	for _, r := range refs {
		if r.Temporaries != 0 {
			t.Fatalf("blob %s: a temporary link outlived its transaction", r.Hash.Name())
		}
		if !r.Committed {
			t.Fatalf("blob %s is in k without a commit key: %+v", r.Hash.Name(), r)
		}
		if !r.Required(0) {
			continue // an orphan awaiting the purge
		}
		res, err := blobfs.Verify(l.Path(r.Hash), r.Hash)
		if err != nil || res.Status != blobfs.Complete {
			t.Fatalf("referenced blob %s: %+v, %v", r.Hash.Name(), res, err)
		}
		markers[res.Marker]++
		referenced[r.Hash] = true
	}
	if markers[blobfs.MarkerNone] == 0 || markers[blobfs.MarkerLZ4] == 0 {
		t.Errorf("markers written: %v, want raw and LZ4", markers)
	}
	// Files: the linked blobs and the orphans awaiting a purge; a purged
	// blob has neither file nor commit key.
	m := g.m
	if len(referenced) != len(m.blobRefs) {
		t.Fatalf("%d blobs required, model has %d linked", len(referenced), len(m.blobRefs))
	}
	var files []blobfs.Hash
	err = l.Scan(context.Background(), func(e blobfs.Entry) error { files = append(files, e.Hash); return nil },
		blobfs.ScanOptions{Foreign: func(f blobfs.Foreign) { t.Errorf("foreign entry %s: %s", f.Path, f.Why) }})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(m.blobRefs) + len(m.orphans); len(files) != want {
		t.Fatalf("%d blob files, model has %d linked + %d orphans", len(files), len(m.blobRefs), len(m.orphans))
	}
	if g.Counts()[KindExpunge] == 0 {
		t.Fatal("no expunge, so no purge, ran")
	}
}

// TestBlobDirectoryRefs checks that the orphans (dead blobs) are
// committed but not required, and purged ones are gone with their key.
func TestBlobDirectoryRefs(t *testing.T) {
	g, l := blobGen(t, 6, 1, 1200)
	refs, _, err := bloblink.Read(context.Background(), g.Store(), nil)
	if err != nil {
		t.Fatal(err)
	}
	byHash := map[blobfs.Hash]bloblink.Ref{}
	for _, r := range refs {
		byHash[r.Hash] = r
	}
	for _, o := range g.m.orphans {
		r, ok := byHash[o]
		if !ok || !r.Committed || r.Required(0) {
			t.Fatalf("orphan %x: %+v, want committed and not required", o, r)
		}
	}
	for h := range g.m.blobRefs {
		if !byHash[h].Required(0) {
			t.Fatalf("linked blob %x not required", h)
		}
	}
	if len(refs) != len(g.m.blobRefs)+len(g.m.orphans) {
		t.Fatalf("k names %d blobs, model %d linked + %d orphans (purged blobs must leave no key)", len(refs), len(g.m.blobRefs), len(g.m.orphans))
	}
	if l.Levels != 1 {
		t.Fatalf("layout levels %d", l.Levels)
	}
}

func TestBlobMarks(t *testing.T) {
	g1, l1 := blobGen(t, 9, -1, 600)
	g2, l2 := blobGen(t, 9, -1, 600)
	if l1.Levels != 0 {
		t.Fatalf("negative depth: %d levels", l1.Levels)
	}
	m1, m2 := mark(t, g1), mark(t, g2)
	if m1.Blobs == nil || len(m1.Blobs.Names) == 0 {
		t.Fatalf("mark without blobs: %+v", m1.Blobs)
	}
	if m1.Blobs.Digest != m2.Blobs.Digest || !slices.Equal(m1.Blobs.Names, m2.Blobs.Names) {
		t.Fatal("the same seed wrote different blob stores")
	}
	if err := CompareMark(m1, m2.Families); err != nil {
		t.Fatal(err)
	}
	if err := CompareBlobs(m1, l2); err != nil {
		t.Fatalf("the same store differs: %v", err)
	}
	// Marks round-trip through the file with their blob part.
	path := filepath.Join(t.TempDir(), "marks.jsonl")
	if err := AppendMark(path, m1); err != nil {
		t.Fatal(err)
	}
	back, err := ReadMarks(path)
	if err != nil || len(back) != 1 || back[0].Blobs == nil || back[0].Blobs.Digest != m1.Blobs.Digest {
		t.Fatalf("ReadMarks = %+v, %v", back, err)
	}
	// A changed file and a missing file are both found.
	h, _ := blobfs.ParseName(m1.Blobs.Names[0])
	p := l2.Path(h)
	data, _ := os.ReadFile(p)
	data[0] ^= 1
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CompareBlobs(m1, l2); err == nil || !strings.Contains(err.Error(), "differ in content") {
		t.Fatalf("changed blob: %v", err)
	}
	os.Remove(p)
	if err := CompareBlobs(m1, l2); err == nil || !strings.Contains(err.Error(), m1.Blobs.Names[0]) {
		t.Fatalf("missing blob: %v", err)
	}
	// A generator without a blob directory marks none.
	if m := mark(t, openGen(t, Config{Seed: 1})); m.Blobs != nil {
		t.Fatal("mark of a store without a blob directory has a blob part")
	}
}

func TestBlobDirMustBeEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Dir: filepath.Join(t.TempDir(), "p"), BlobDir: dir})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Open with a non-empty blob directory = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "x")); !bytes.Equal(got, nil) {
		t.Fatal("the directory's file was touched")
	}
}

// TestBlobPurgeDelay: with a purge delay a dead blob keeps its file and
// commit key (committed, not required, so no mark references it) until it
// has been dead for the delay; then the purge removes both. A mark taken
// while a blob was live references it even after the purge removed it.
func TestBlobPurgeDelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  bool
	}{{"blob directory", true}, {"family t", false}} {
		t.Run(tc.name, func(t *testing.T) {
			const step, delay = 10 * time.Millisecond, time.Second // 100 transactions
			now := time.Unix(fakeEpoch, 0)
			cfg := Config{Seed: 12, WriteBufferSize: 256 << 10, Accounts: 4, BlobPurgeDelay: delay,
				Clock: func() time.Time { now = now.Add(step); return now }}
			var l blobfs.Layout
			if tc.dir {
				cfg.BlobDir = filepath.Join(t.TempDir(), "blobs")
				l, _ = blobfs.NewLayout(cfg.BlobDir, blobfs.DefaultDepth)
			}
			g := openGen(t, cfg)
			run(t, g, 300)
			early := mark(t, g)
			run(t, g, 900)
			stored := func() map[blobfs.Hash]bool {
				refs, _, err := bloblink.Read(context.Background(), g.Store(), nil)
				if err != nil {
					t.Fatal(err)
				}
				out := map[blobfs.Hash]bool{}
				for _, r := range refs {
					if !r.Committed {
						t.Fatalf("blob %s in k without a commit key", r.Hash.Name())
					}
					out[r.Hash] = true
				}
				return out
			}
			have := stored()
			m := g.m
			if len(m.orphans) == 0 {
				t.Fatal("no dead blob awaits the purge")
			}
			for i, o := range m.orphans {
				if age := now.Sub(m.died[i]); age >= delay {
					t.Errorf("orphan %x dead for %v, past the delay %v", o, age, delay)
				}
				if !have[o] {
					t.Errorf("orphan %x lost its commit key within the delay", o)
				}
				if tc.dir {
					if _, err := os.Stat(l.Path(o)); err != nil {
						t.Errorf("orphan %x lost its file within the delay: %v", o, err)
					}
				}
			}
			// Every blob ever delivered is linked, awaiting the purge, or
			// purged (neither key nor file); some were purged.
			if want := len(m.blobRefs) + len(m.orphans); len(have) != want {
				t.Fatalf("k names %d blobs, model %d linked + %d dead", len(have), len(m.blobRefs), len(m.orphans))
			}
			if purged := g.Counts()[KindDelivery] - len(have); purged <= 0 {
				t.Fatalf("%d deliveries, %d blobs left: the purge removed none", g.Counts()[KindDelivery], len(have))
			}
			if !tc.dir {
				return
			}
			gone := 0
			for _, name := range early.Blobs.Names {
				h, _ := blobfs.ParseName(name)
				if _, err := os.Stat(l.Path(h)); errors.Is(err, os.ErrNotExist) {
					gone++
					if have[h] {
						t.Errorf("blob %s: file purged, commit key kept", name)
					}
				}
			}
			if gone == 0 {
				t.Fatal("no blob of the early mark was purged since")
			}
			// Past the delay, the next transaction purges every orphan
			// older than it.
			old := slices.Clone(m.orphans)
			now = now.Add(delay)
			run(t, g, 1)
			have = stored()
			for _, o := range old {
				if _, err := os.Stat(l.Path(o)); have[o] || !errors.Is(err, os.ErrNotExist) {
					t.Errorf("orphan %x dead past the delay kept (key %v, file %v)", o, have[o], err)
				}
			}
		})
	}
}

func TestBlobPurgeDelayNegative(t *testing.T) {
	_, err := Open(Config{Dir: filepath.Join(t.TempDir(), "p"), BlobPurgeDelay: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "BlobPurgeDelay") {
		t.Fatalf("Open with a negative purge delay = %v", err)
	}
}
