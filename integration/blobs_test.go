package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/linxGnu/grocksdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/miniotest"
	"github.com/tailer-backup/tailer/internal/promtest"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/retention"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// countingReplica counts the PUTs under blobs/ and their bytes.
type countingReplica struct {
	uploader.Replica
	mu    sync.Mutex
	puts  map[string]int
	bytes int64
}

func (r *countingReplica) Put(ctx context.Context, key string, src io.Reader, size int64) error {
	if err := r.Replica.Put(ctx, key, src, size); err != nil {
		return err
	}
	if strings.HasPrefix(key, layout.BlobsRoot) {
		r.mu.Lock()
		r.puts[key]++
		r.bytes += size
		r.mu.Unlock()
	}
	return nil
}

// blobGen opens a load generator that keeps its mail in a blob directory
// (Stalwart's order: temporary link, file in pieces, commit key; purges
// delete the file, then the keys, once a blob has been dead for
// purgeDelay), recording a mark every markEvery transactions while
// marking is on.
type blobGen struct {
	g       *loadgen.Generator
	blobs   blobfs.Layout
	mu      sync.Mutex
	marks   []loadgen.Mark
	marking atomic.Bool
}

func openBlobGen(t *testing.T, dir string, seed int64, markEvery int, purgeDelay time.Duration) *blobGen {
	t.Helper()
	bg := &blobGen{}
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: seed, WriteBufferSize: 256 << 10,
		MaxTotalWALSize: -1, BlobDir: filepath.Join(dir, "blobs"), BlobDepth: 2, Accounts: 8, BlobPurgeDelay: purgeDelay,
		AfterTx: func(tx loadgen.Tx) error {
			if !bg.marking.Load() || tx.N%markEvery != 0 {
				return nil
			}
			m, err := bg.g.Mark(context.Background())
			if err == nil {
				bg.mu.Lock()
				bg.marks = append(bg.marks, m)
				bg.mu.Unlock()
			}
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	bg.g = g
	bg.blobs, _ = blobfs.NewLayout(filepath.Join(dir, "blobs"), 2)
	return bg
}

// restoreBlobsAt restores the store at seq, reads the blobs its k
// references, restores them with blobship.Restore into a new directory
// and returns that directory and the restore's report.
func (e *env) restoreBlobsAt(r uploader.Replica, seq uint64) (blobfs.Layout, []bloblink.Ref, blobship.RestoreReport, []segment.FamilySum) {
	e.t.Helper()
	ctx := context.Background()
	to := filepath.Join(e.dir, "restore-"+time.Now().Format("150405.000000000"))
	res, err := restore.Run(ctx, restore.Options{Replica: r, To: to, Target: restore.Target{Seq: seq, HasSeq: true}, Digests: true, Log: testLogger(e.t)})
	if err != nil {
		e.t.Fatalf("restore at %d: %v", seq, err)
	}
	st, err := store.OpenReadOnly(to)
	if err != nil {
		e.t.Fatal(err)
	}
	refs, _, err := bloblink.Read(ctx, st, nil)
	st.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	dst, _ := blobfs.NewLayout(to+"-blobs", 2)
	rep, err := blobship.Restore(ctx, blobship.RestoreOptions{Replica: r, Layout: dst, Refs: refs, Log: testLogger(e.t)})
	if err != nil {
		e.t.Fatalf("restore the blobs at %d: %v", seq, err)
	}
	return dst, refs, rep, res.Families
}

// checkBlobRestore restores the store and its blobs at m.Seq and
// compares both with the mark, the blobs byte for byte: no blob may be
// missing.
func (e *env) checkBlobRestore(r uploader.Replica, m loadgen.Mark) {
	e.t.Helper()
	dst, _, rep, fams := e.restoreBlobsAt(r, m.Seq)
	if err := loadgen.CompareMark(m, fams); err != nil {
		e.t.Fatalf("restore at %d: %v", m.Seq, err)
	}
	for _, mb := range rep.Missing {
		e.t.Errorf("restore at %d lacks blob %s of %s: %s", m.Seq, mb.Hash.Name(), mb.Owner, mb.Why)
	}
	if err := loadgen.CompareBlobs(m, dst); err != nil {
		e.t.Fatalf("restored blob store at %d: %v", m.Seq, err)
	}
}

// missingIn returns the blobs a tailer log reports missing (BLOB MISSING
// records, text or JSON).
func missingIn(log string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "BLOB MISSING") {
			continue
		}
		for _, pre := range []string{" blob=", `"blob":"`} {
			if _, rest, ok := strings.Cut(line, pre); ok && len(rest) >= blobfs.NameLen {
				out[rest[:blobfs.NameLen]] = true
			}
		}
	}
	return out
}

// injectMissing commits and links a blob that has no file: as if
// Stalwart's purge deleted it before tailer saw its commit key.
func injectMissing(t *testing.T, g *loadgen.Generator, account uint32) blobfs.Hash {
	t.Helper()
	h := blobfs.Sum([]byte("purged before tailer saw its commit key"))
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	wb.PutCF(g.Store().Handle("k"), bloblink.CommitKey(h), nil)
	wb.PutCF(g.Store().Handle("k"), bloblink.DocumentKey(h, account, 0, 1), nil)
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	if err := g.Store().DB.Write(wo, wb); err != nil {
		t.Fatal(err)
	}
	return h
}

// blobPurgeDelay is the load generator's purge delay in these tests: far
// above tailer's shipping latency at their load (Stalwart purges daily),
// far below the length of a run, so marks' blobs get purged meanwhile.
const blobPurgeDelay = 5 * time.Second

// killPurgeDelay is the purge delay of the kill -9 test: tailer is down
// between a kill and its restart (a process start, a LIST of blobs/, a
// full scan of the blob store, on a loaded machine), and a blob that
// lives shorter than that is lost for real, as it would be with
// Stalwart. Stalwart purges daily; this only needs to exceed a restart.
const killPurgeDelay = 60 * time.Second

// TestBlobStoreRunRestore runs the agent with --blobs on a primary written
// under load (blob files in Stalwart's layout and order, dead blobs purged
// after blobPurgeDelay), takes marks, and restores the store and its blobs
// at each, whole and byte for byte, including marks whose blobs the purge
// deleted from disk by the end. No blob is missing, none uploaded twice.
func TestBlobStoreRunRestore(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			bg := openBlobGen(t, dir, 31, 150, blobPurgeDelay)
			counted := &countingReplica{Replica: b.open(t), puts: map[string]int{}}
			e := &env{t: t, dir: dir, gen: bg.g, replica: counted}
			t.Cleanup(e.stopTailer)
			e.load(300)
			reg := prometheus.NewRegistry()
			var logs lockedLog
			log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelWarn}))
			// Periodic exports, so that retention below has older points to drop.
			e.runAgent(agent.Config{Poll: 25 * time.Millisecond, Blobs: bg.blobs.Root, LeaseTTL: -1, ExportInterval: 3 * time.Second, Registry: reg, Log: log}) // no lease: the counting wrapper hides conditional writes
			e.waitRestorable(bg.g.Store().DB.GetLatestSequenceNumber())

			bg.marking.Store(true)
			if _, err := bg.g.Run(context.Background(), 600, 100); err != nil {
				t.Fatal(err)
			}
			bg.marking.Store(false)
			final := e.mark()
			// More load, longer than the purge delay: the purge deletes
			// blobs the marks reference.
			if _, err := bg.g.Run(context.Background(), 900, 100); err != nil {
				t.Fatal(err)
			}
			last := e.mark()
			e.waitRestorable(bg.g.Store().DB.GetLatestSequenceNumber())
			e.stopTailer()

			marks := append(bg.marks, final)
			purged := 0
			for _, m := range marks {
				if loadgen.CompareBlobs(m, bg.blobs) != nil {
					purged++
				}
			}
			if len(marks) < 4 || purged == 0 {
				t.Fatalf("%d marks, %d with blobs purged from disk since: the test proves too little", len(marks), purged)
			}
			for _, m := range marks {
				e.checkBlobRestore(counted, m)
			}
			if n := promtest.Value(t, reg, "tailer_blobs_missing_total"); n != 0 {
				t.Errorf("tailer_blobs_missing_total = %v, want 0: every blob lived longer than tailer took to copy it", n)
			}
			if out := logs.String(); strings.Contains(out, "BLOB MISSING") {
				t.Errorf("tailer reported missing blobs:\n%s", out)
			}
			counted.mu.Lock()
			defer counted.mu.Unlock()
			for k, n := range counted.puts {
				if n > 1 {
					t.Errorf("%s uploaded %d times", k, n)
				}
			}
			shipped := promtest.Value(t, reg, "tailer_blobs_shipped_total")
			if int(shipped) != len(counted.puts) {
				t.Errorf("tailer_blobs_shipped_total = %v, %d blobs uploaded", shipped, len(counted.puts))
			}
			t.Logf("%s: %d marks restored whole byte for byte, %d of them with blobs purged from disk since; %d blob PUTs (%d distinct), %d object bytes, %v blob file bytes",
				b.name, len(marks), purged, sum(counted.puts), len(counted.puts), counted.bytes,
				promtest.Value(t, reg, "tailer_blob_bytes_shipped_total"))

			// Retention keeps the newest export only, with no grace for
			// blobs: it deletes the blob objects only older points needed,
			// and the newest point still restores whole, byte for byte.
			ctx := context.Background()
			before, err := blobship.Listed(ctx, counted.Replica)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := retention.Apply(ctx, counted.Replica, retention.Policy{KeepExports: 1, BlobGrace: time.Nanosecond}, time.Now(), testLogger(t))
			if err != nil {
				t.Fatalf("retention: %v", err)
			}
			after, err := blobship.Listed(ctx, counted.Replica)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) >= len(before) {
				t.Fatalf("retention deleted no blob object (%d before, %d after; %d objects deleted): the test proves too little", len(before), len(after), rep.Objects)
			}
			e.checkBlobRestore(counted.Replica, last)
			t.Logf("%s: retention kept the newest export: %d of %d blob objects deleted, the newest point restores whole", b.name, len(before)-len(after), len(before))
		})
	}
}

// TestBlobStoreMissingReported: a blob committed and linked without a
// file (as if the purge deleted it before tailer saw its commit key) is
// reported, counted and named with its account in an ERROR; the backup
// goes on, and a restore past it brings back every other blob, byte for
// byte, and reports that one.
func TestBlobStoreMissingReported(t *testing.T) {
	dir := t.TempDir()
	bg := openBlobGen(t, dir, 33, 1, time.Hour)
	e := &env{t: t, dir: dir, gen: bg.g, replica: openReplica(t, "file://"+filepath.Join(dir, "bucket"), uploader.Options{})}
	t.Cleanup(e.stopTailer)
	e.load(200)
	reg := prometheus.NewRegistry()
	var logs lockedLog
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.runAgent(agent.Config{Poll: 25 * time.Millisecond, Blobs: bg.blobs.Root, LeaseTTL: -1, Registry: reg, Log: log})
	e.waitRestorable(bg.g.Store().DB.GetLatestSequenceNumber())
	gone := injectMissing(t, bg.g, 42)
	e.load(200)
	seq := bg.g.Store().DB.GetLatestSequenceNumber()
	e.waitRestorable(seq)
	e.stopTailer()

	if n := promtest.Value(t, reg, "tailer_blobs_missing_total"); n != 1 {
		t.Errorf("tailer_blobs_missing_total = %v after one blob was committed without a file", n)
	}
	if got := missingIn(logs.String()); len(got) != 1 || !got[gone.Name()] {
		t.Errorf("blobs reported missing: %v, want only %s", got, gone.Name())
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, gone.Name()) || !strings.Contains(out, "account 42") {
		t.Errorf("no ERROR naming the missing blob %s and account 42 in the log", gone.Name())
	}
	dst, refs, rep, _ := e.restoreBlobsAt(e.replica, seq)
	if len(rep.Missing) != 1 || rep.Missing[0].Hash != gone || !strings.Contains(rep.Missing[0].Owner, "account 42") {
		t.Fatalf("restore past the missing blob reports %+v, want only %s of account 42", rep.Missing, gone.Name())
	}
	var names []string
	for _, r := range refs {
		if r.Required(0) && r.Hash != gone {
			names = append(names, r.Hash.Name())
		}
	}
	want, _, err := loadgen.BlobsDigest(bg.blobs, names)
	if err != nil {
		t.Fatal(err)
	}
	got, lacking, err := loadgen.BlobsDigest(dst, names)
	if err != nil || len(lacking) > 0 || got != want || len(names) == 0 {
		t.Fatalf("the %d other blobs restored: %d lacking, digest %s, primary's %s, %v", len(names), len(lacking), got, want, err)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBlobStoreKill9 kills `tailer run --blobs` with SIGKILL at random
// moments under load and restarts it. No blob is lost (restores at marks
// throughout equal the marks, blobs included) and none is uploaded twice:
// the bucket keeps versions, so every PUT of a blob leaves one.
func TestBlobStoreKill9(t *testing.T) {
	bin, err := buildTailer()
	if err != nil {
		t.Fatalf("build tailer: %v", err)
	}
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	srv.CreateBucket("blobcrash")
	cli := srv.Client()
	ctx := context.Background()
	if _, err := cli.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("blobcrash"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatalf("enable versioning: %v", err)
	}
	url := srv.URL("blobcrash", "stalwart")
	dir := t.TempDir()
	bg := openBlobGen(t, dir, 32, 200, killPurgeDelay)
	e := &env{t: t, dir: dir, gen: bg.g, replica: openReplica(t, url, uploader.Options{})}
	e.load(200)
	logf := tailerLog(t, dir)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--db", bg.g.Dir(), "--blobs", bg.blobs.Root, "--scratch", filepath.Join(dir, "scratch"),
			"--replica", url, "--poll", "100ms", "--listen", "", "--log-format", "json")
		cmd.Env = append(os.Environ(), srv.Env()...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := start()
	e.waitRestorable(bg.g.Store().DB.GetLatestSequenceNumber())
	bg.marking.Store(true)
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan error, 1)
	go func() { _, err := bg.g.Run(loadCtx, 0, 150); loadDone <- err }()
	const kills = 6
	cmd = killAndRestart(t, cmd, start, kills, 9, 300*time.Millisecond, 1200*time.Millisecond)
	stopLoad()
	if err := <-loadDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	bg.marking.Store(false)
	final := e.mark()
	e.waitRestorable(final.Seq)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tailer run did not exit 0 on SIGTERM: %v", err)
	}
	if gens := e.generations(); len(gens) != 1 {
		t.Fatalf("%d generations after the crashes, want the first one continued", len(gens))
	}
	bg.mu.Lock()
	marks := append(bg.marks, final)
	bg.mu.Unlock()
	if len(marks) < 4 {
		t.Fatalf("only %d marks", len(marks))
	}
	for _, m := range marks {
		e.checkBlobRestore(e.replica, m)
	}
	if logData, _ := os.ReadFile(logf.Name()); bytes.Contains(logData, []byte("BLOB MISSING")) {
		t.Errorf("tailer reported missing blobs: %v", slices.Collect(maps.Keys(missingIn(string(logData)))))
	}
	// Every PUT of a blob left a version.
	versions := map[string]int{}
	var total int
	p := s3.NewListObjectVersionsPaginator(cli, &s3.ListObjectVersionsInput{Bucket: aws.String("blobcrash"), Prefix: aws.String("stalwart/" + layout.BlobsRoot)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			versions[aws.ToString(v.Key)]++
			total++
		}
	}
	twice := 0
	for k, n := range versions {
		if n > 1 {
			twice++
			t.Errorf("%s uploaded %d times", k, n)
		}
	}
	t.Logf("%d SIGKILLs; %d marks restored whole byte for byte; %d blob PUTs for %d blobs (%d uploaded twice)", kills, len(marks), total, len(versions), twice)
}
