package agent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/promtest"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// recording is a replica that records its successful PUTs in order.
type recording struct {
	uploader.Replica
	mu   sync.Mutex
	puts []string
}

func (r *recording) Put(ctx context.Context, key string, src io.Reader, size int64) error {
	if err := r.Replica.Put(ctx, key, src, size); err != nil {
		return err
	}
	r.mu.Lock()
	r.puts = append(r.puts, key)
	r.mu.Unlock()
	return nil
}

func (r *recording) order() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.puts...)
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// commitsOf returns the blobs whose commit key a segment's batches put.
func commitsOf(t *testing.T, r uploader.Replica, key string) []blobfs.Hash {
	t.Helper()
	ctx := context.Background()
	rc, err := r.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	rd, err := segment.Open(bytes.NewReader(data), int64(len(data)), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var kID uint32
	for _, f := range rd.Header().Families {
		if f.Name == "k" {
			kID = f.ID
		}
	}
	var out []blobfs.Hash
	for {
		b, err := rd.NextBatch()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		wbatch.Each(b.Data, func(rec wbatch.Record) error {
			if rec.CF == kID && rec.Op == wbatch.OpPut {
				if l, err := bloblink.ParseKey(rec.Key); err == nil && l.Kind == bloblink.Commit {
					out = append(out, l.Hash)
				}
			}
			return nil
		})
	}
}

// TestBlobsBeforeWhatReferencesThem runs the agent on a load generator
// that keeps its mail in a filesystem blob store (Stalwart's order: link,
// file in pieces, commit key; purges, 5s after a blob dies as Stalwart
// purges on a schedule, delete the file first) and checks
// the replica's PUT order: every blob a segment commits, and every blob
// of an export's manifest, is uploaded before it, the manifest before its
// export, and no blob twice. A blob committed without a file (purged
// before tailer saw it) is reported with its hash and account and
// counted, and does not stop the backup. A restore of the blobs k
// references at a mark equals the mark byte for byte.
func TestBlobsBeforeWhatReferencesThem(t *testing.T) {
	base := t.TempDir()
	blobDir := filepath.Join(base, "blobs")
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(base, "primary"), BlobDir: blobDir, BlobDepth: 2,
		Seed: 21, Accounts: 4, WriteBufferSize: 256 << 10, MaxTotalWALSize: -1,
		BlobPurgeDelay: 5 * time.Second}) // Stalwart purges dead blobs on a schedule: tailer ships every one in time
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	if _, err := g.Run(ctx, 150, 0); err != nil {
		t.Fatal(err)
	}
	file, err := uploader.Open(ctx, "file://"+filepath.Join(base, "bucket"), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := &recording{Replica: file}
	reg := prometheus.NewRegistry()
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	stop := runFor(t, agent.Config{DB: g.Dir(), Scratch: filepath.Join(base, "scratch"), Replica: rep, Blobs: blobDir,
		Poll: 20 * time.Millisecond, LeaseTTL: -1, Registry: reg, Log: log})
	waitShipped(t, rep, g.Store().DB.GetLatestSequenceNumber()) // the base export: the rest is in segments
	if _, err := g.Run(ctx, 400, 200); err != nil {
		t.Fatal(err)
	}
	m, err := g.Mark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := g.Store().DB.NewSnapshot()
	defer g.Store().DB.ReleaseSnapshot(snap)
	// A blob committed and linked whose file is gone before tailer sees
	// its commit key.
	gone := blobfs.Sum([]byte("purged before tailer saw it"))
	wb := grocksdb.NewWriteBatch()
	wb.PutCF(g.Store().Handle("k"), bloblink.CommitKey(gone), nil)
	wb.PutCF(g.Store().Handle("k"), bloblink.DocumentKey(gone, 42, 0, 7), nil)
	wo := grocksdb.NewDefaultWriteOptions()
	if err := g.Store().DB.Write(wo, wb); err != nil {
		t.Fatal(err)
	}
	wb.Destroy()
	wo.Destroy()
	if _, err := g.Run(ctx, 300, 200); err != nil {
		t.Fatal(err)
	}
	waitShipped(t, rep, g.Store().DB.GetLatestSequenceNumber())
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Only the blob committed without a file is reported: every other
	// blob lives (dead, awaiting the purge) longer than tailer takes to
	// copy it.
	reported := map[string]bool{}
	for _, line := range strings.Split(logs.String(), "\n") {
		if _, rest, ok := strings.Cut(line, "BLOB MISSING"); ok {
			if _, name, ok := strings.Cut(rest, " blob="); ok && len(name) >= blobfs.NameLen {
				reported[name[:blobfs.NameLen]] = true
			}
		}
	}
	if len(reported) != 1 || !reported[gone.Name()] {
		t.Errorf("blobs reported missing: %v, want only %s", reported, gone.Name())
	}
	if n := promtest.Value(t, reg, "tailer_blobs_missing_total"); n != 1 {
		t.Errorf("tailer_blobs_missing_total = %v, want 1", n)
	}
	if out := logs.String(); !strings.Contains(out, "BLOB MISSING") || !strings.Contains(out, gone.Name()) || !strings.Contains(out, "account 42") {
		t.Errorf("no ERROR naming the missing blob %s and account 42 in the log", gone.Name())
	}
	puts := rep.order()
	at := map[string]int{}
	blobPuts, segments, exports := 0, 0, 0
	for i, k := range puts {
		if _, dup := at[k]; dup && strings.HasPrefix(k, layout.BlobsRoot) {
			t.Errorf("%s uploaded twice", k)
		}
		at[k] = i
	}
	before := func(blob blobfs.Hash, what string, idx int) {
		t.Helper()
		if reported[blob.Name()] {
			return
		}
		if j, ok := at[layout.BlobKey(blob)]; !ok || j > idx {
			t.Errorf("blob %s is not uploaded before %s (at %d, %v; %s at %d)", blob.Name(), what, j, ok, what, idx)
		}
	}
	for i, k := range puts {
		switch {
		case strings.HasPrefix(k, layout.BlobsRoot):
			blobPuts++
		case strings.HasSuffix(k, ".tseg"):
			segments++
			for _, h := range commitsOf(t, rep, k) {
				before(h, k, i)
			}
		case strings.HasSuffix(k, ".texp"):
			exports++
			mk := strings.TrimSuffix(k, ".texp") + layout.BlobManifestSuffix
			j, ok := at[mk]
			if !ok || j > i {
				t.Fatalf("export %s without its blob manifest before it", k)
			}
			rc, err := rep.Get(ctx, mk)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			hashes, err := blobship.DecodeManifest(data)
			if err != nil || len(hashes) == 0 {
				t.Fatalf("manifest %s: %d hashes, %v", mk, len(hashes), err)
			}
			for _, h := range hashes {
				before(h, mk, j)
			}
		}
	}
	if blobPuts == 0 || segments == 0 || exports == 0 {
		t.Fatalf("%d blob, %d segment, %d export uploads", blobPuts, segments, exports)
	}
	if got := promtest.Value(t, reg, "tailer_blobs_shipped_total"); int(got) != blobPuts {
		t.Errorf("tailer_blobs_shipped_total = %v, %d blob uploads", got, blobPuts)
	}
	refs, _, err := bloblink.Read(ctx, g.Store(), snap)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := blobfs.NewLayout(filepath.Join(base, "restored"), 2)
	res, err := blobship.Restore(ctx, blobship.RestoreOptions{Replica: file, Layout: dst, Refs: refs})
	if err != nil {
		t.Fatalf("restore the blobs of the mark: %v", err)
	}
	for _, mb := range res.Missing {
		t.Errorf("the restore of the mark lacks blob %s of %s: %s", mb.Hash.Name(), mb.Owner, mb.Why)
	}
	if err := loadgen.CompareBlobs(m, dst); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d blobs uploaded, %d segments, %d exports, %d blobs reported missing", blobPuts, segments, exports, len(reported))
}
