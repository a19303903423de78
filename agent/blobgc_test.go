package agent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/retention"
	"github.com/tailer-backup/tailer/uploader"
)

// gated is a replica whose uploads can be made to fail (an outage).
type gated struct {
	uploader.Replica
	down    atomic.Bool  // Put fails
	refused atomic.Int64 // segment Puts refused while down
}

func (g *gated) Put(ctx context.Context, key string, src io.Reader, size int64) error {
	if g.down.Load() {
		if strings.HasSuffix(key, ".tseg") {
			g.refused.Add(1)
		}
		return errors.New("gated replica: down")
	}
	return g.Replica.Put(ctx, key, src, size)
}

// blobPrimary is a primary with a family k and a filesystem blob store.
type blobPrimary struct {
	dir   string
	st    *store.Store
	blobs blobfs.Layout
	n     int
}

func newBlobPrimary(t *testing.T, base string) *blobPrimary {
	t.Helper()
	dir := filepath.Join(base, "primary")
	st, err := store.OpenWritable(dir, []string{"k", "p"}, true, func(o *grocksdb.Options) {
		o.SetWriteBufferSize(64 << 10)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	l, err := blobfs.NewLayout(filepath.Join(base, "blobs"), 2)
	if err != nil {
		t.Fatal(err)
	}
	return &blobPrimary{dir: dir, st: st, blobs: l}
}

// write applies one batch: a document put, plus with store the blob's
// file (written first, as Stalwart does) and its commit and document
// keys, or with purge the deletion of both keys and of the file.
func (p *blobPrimary) write(t *testing.T, payload []byte, store, purge bool) uint64 {
	t.Helper()
	h := blobfs.Sum(payload)
	path := p.blobs.Path(h)
	if store {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, blobfs.Encode(payload, false), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	p.n++
	wb.PutCF(p.st.Handle("p"), []byte{byte(p.n >> 8), byte(p.n)}, bytes.Repeat([]byte{byte(p.n)}, 100))
	switch {
	case store:
		wb.PutCF(p.st.Handle("k"), bloblink.CommitKey(h), nil)
		wb.PutCF(p.st.Handle("k"), bloblink.DocumentKey(h, 7, 0, 1), nil)
	case purge:
		wb.DeleteCF(p.st.Handle("k"), bloblink.DocumentKey(h, 7, 0, 1))
		wb.DeleteCF(p.st.Handle("k"), bloblink.CommitKey(h))
	}
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	if err := p.st.DB.Write(wo, wb); err != nil {
		t.Fatal(err)
	}
	if purge {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	return p.st.DB.GetLatestSequenceNumber()
}

// has reports whether the bucket holds the blob object of h.
func has(t *testing.T, r uploader.Replica, h blobfs.Hash) bool {
	t.Helper()
	objs, err := r.List(context.Background(), layout.BlobKey(h))
	if err != nil {
		t.Fatal(err)
	}
	return len(objs) == 1
}

// exportAtOrAfter reports whether the bucket holds an export at seq or later.
func exportAtOrAfter(r uploader.Replica, seq uint64) bool {
	gens, _, err := catalog.List(context.Background(), r, nil)
	if err != nil || len(gens) == 0 {
		return false
	}
	ex := gens[len(gens)-1].Exports
	return len(ex) > 0 && ex[len(ex)-1].Seq >= seq
}

// restoreBlobs restores the blobs the primary references now from r and
// fails the test if any is missing.
func restoreBlobs(t *testing.T, p *blobPrimary, r uploader.Replica, dir string) {
	t.Helper()
	ctx := context.Background()
	refs, _, err := bloblink.Read(ctx, p.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) == 0 {
		t.Fatal("the primary references no blob")
	}
	dst, _ := blobfs.NewLayout(dir, 2)
	res, err := blobship.Restore(ctx, blobship.RestoreOptions{Replica: r, Layout: dst, Refs: refs})
	if err != nil {
		t.Fatalf("restore the blobs: %v", err)
	}
	for _, m := range res.Missing {
		t.Errorf("the restore of the newest point lacks blob %s (%s)", m.Hash.Name(), m.Owner)
	}
}

// blobConfig is an agent shipping p's blobs to r, with frequent exports.
func blobConfig(t *testing.T, base string, p *blobPrimary, r uploader.Replica) agent.Config {
	depth := 2
	return agent.Config{DB: p.dir, Scratch: filepath.Join(base, "scratch"), Replica: r,
		Blobs: p.blobs.Root, BlobDepth: &depth, Poll: 20 * time.Millisecond, LeaseTTL: -1, Log: testLogger(t),
		ExportInterval: 300 * time.Millisecond}
}

// retainOne keeps one export and deletes unreferenced blobs at once.
var retainOne = retention.Policy{KeepExports: 1, BlobGrace: time.Nanosecond}

// TestBlobStoredAgainAfterRetentionIsUploaded: retention deletes a blob
// no kept point references; Stalwart then stores the same content again
// (same hash, a new commit key). The running agent must upload it again:
// the newest point's restore has it.
func TestBlobStoredAgainAfterRetentionIsUploaded(t *testing.T) {
	base := t.TempDir()
	p := newBlobPrimary(t, base)
	x := []byte("the same attachment, sent twice")
	hx := blobfs.Sum(x)
	p.write(t, x, true, false)
	file, err := uploader.Open(context.Background(), "file://"+filepath.Join(base, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := blobConfig(t, base, p, file)
	cfg.Retention, cfg.MaintenanceInterval = retainOne, 50*time.Millisecond
	stop := runFor(t, cfg)
	waitFor(t, "blob X uploaded", func() bool { return has(t, file, hx) })
	seq := p.write(t, x, false, true) // purged: no point after this references X
	waitFor(t, "an export after the purge", func() bool { return exportAtOrAfter(file, seq) })
	waitFor(t, "retention deleting blob X", func() bool { return !has(t, file, hx) })
	seq = p.write(t, x, true, false) // stored again
	waitShipped(t, file, seq)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !has(t, file, hx) {
		t.Errorf("blob %s, stored again after retention deleted it, is not in the bucket", hx.Name())
	}
	restoreBlobs(t, p, file, filepath.Join(base, "restored"))
}

// TestBlobReferencedFromSpoolSurvivesRetention: a segment referencing a
// blob is sealed but still in the spool (the replica refuses uploads)
// while retention runs, and no point in the bucket references that blob:
// it must not be deleted.
func TestBlobReferencedFromSpoolSurvivesRetention(t *testing.T) {
	base := t.TempDir()
	p := newBlobPrimary(t, base)
	x := []byte("an attachment stored, purged and stored again")
	hx := blobfs.Sum(x)
	p.write(t, x, true, false)
	file, err := uploader.Open(context.Background(), "file://"+filepath.Join(base, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &gated{Replica: file}
	a, err := agent.New(blobConfig(t, base, p, r))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "blob X uploaded", func() bool { return has(t, file, hx) })
	seq := p.write(t, x, false, true)
	waitFor(t, "an export after the purge", func() bool { return exportAtOrAfter(file, seq) })
	r.down.Store(true)
	p.write(t, x, true, false) // its segment stays in the spool
	waitFor(t, "the segment refused", func() bool { return r.refused.Load() > 0 })
	// Retention through the bare replica (the agent's refuses uploads),
	// as the agent's maintenance would apply it.
	policy := retainOne
	policy.Blobs = a.BlobGuard(0)
	rep, err := retention.Apply(ctx, file, policy, time.Now(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Objects == 0 {
		t.Fatal("retention deleted nothing: the test does not make X unreferenced in the bucket")
	}
	if !has(t, file, hx) {
		t.Errorf("retention deleted blob %s while a segment in the spool references it", hx.Name())
	}
	r.down.Store(false)
	waitShipped(t, file, p.st.DB.GetLatestSequenceNumber())
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	restoreBlobs(t, p, file, filepath.Join(base, "restored"))
}
