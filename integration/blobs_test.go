package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
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
// delete the file, then the keys), recording a mark every markEvery
// transactions while marking is on.
type blobGen struct {
	g       *loadgen.Generator
	blobs   blobfs.Layout
	mu      sync.Mutex
	marks   []loadgen.Mark
	marking atomic.Bool
}

func openBlobGen(t *testing.T, dir string, seed int64, markEvery int) *blobGen {
	t.Helper()
	bg := &blobGen{}
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(dir, "primary"), Seed: seed, WriteBufferSize: 256 << 10,
		MaxTotalWALSize: -1, BlobDir: filepath.Join(dir, "blobs"), BlobDepth: 2, Accounts: 8,
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

// checkBlobRestore restores the store at m.Seq, reads the blobs its k
// references, restores them with blobship.Restore into a new directory
// and compares that with the mark byte for byte.
//
// Blobs tailer reported missing (reported: their names; a blob that lived
// shorter than tailer took to copy it) may be absent, and only those: the
// mark then cannot be compared whole, and exact is false.
func (e *env) checkBlobRestore(r uploader.Replica, m loadgen.Mark, reported map[string]bool) (exact bool) {
	e.t.Helper()
	ctx := context.Background()
	to := filepath.Join(e.dir, "restore-"+time.Now().Format("150405.000000000"))
	res, err := restore.Run(ctx, restore.Options{Replica: r, To: to, Target: restore.Target{Seq: m.Seq, HasSeq: true}, Digests: true, Log: testLogger(e.t)})
	if err != nil {
		e.t.Fatalf("restore at %d: %v", m.Seq, err)
	}
	if err := loadgen.CompareMark(m, res.Families); err != nil {
		e.t.Fatalf("restore at %d: %v", m.Seq, err)
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
		e.t.Fatalf("restore the blobs at %d: %v", m.Seq, err)
	}
	for _, mb := range rep.Missing {
		if !reported[mb.Hash.Name()] {
			e.t.Fatalf("restore at %d lacks blob %s of %s, which tailer never reported missing: %s", m.Seq, mb.Hash.Name(), mb.Owner, mb.Why)
		}
	}
	if len(rep.Missing) > 0 {
		return false
	}
	if err := loadgen.CompareBlobs(m, dst); err != nil {
		e.t.Fatalf("restored blob store at %d: %v", m.Seq, err)
	}
	return true
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

// TestBlobStoreRunRestore runs the agent with --blobs on a primary written
// under load (blob files in Stalwart's layout and order, purges), takes
// marks, and restores the store and its blobs at each, including marks
// whose blobs a later purge deleted from disk. A blob committed without a
// file is reported (metric, log naming hash and account). Every blob is
// uploaded once.
func TestBlobStoreRunRestore(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			bg := openBlobGen(t, dir, 31, 150)
			counted := &countingReplica{Replica: b.open(t), puts: map[string]int{}}
			e := &env{t: t, dir: dir, gen: bg.g, replica: counted}
			t.Cleanup(e.stopTailer)
			e.load(300)
			reg := prometheus.NewRegistry()
			var logs lockedLog
			log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelWarn}))
			e.runAgent(agent.Config{Poll: 25 * time.Millisecond, Blobs: bg.blobs.Root, LeaseTTL: -1, Registry: reg, Log: log}) // no lease: the counting wrapper hides conditional writes
			e.waitRestorable(bg.g.Store().DB.GetLatestSequenceNumber())

			bg.marking.Store(true)
			if _, err := bg.g.Run(context.Background(), 1500, 150); err != nil {
				t.Fatal(err)
			}
			bg.marking.Store(false)
			final := e.mark()
			gone := injectMissing(t, bg.g, 42)
			// More load: purges delete blobs the marks reference.
			if _, err := bg.g.Run(context.Background(), 600, 150); err != nil {
				t.Fatal(err)
			}
			e.waitRestorable(bg.g.Store().DB.GetLatestSequenceNumber())
			e.stopTailer()

			marks := append(bg.marks, final)
			purged := 0
			for _, m := range marks {
				if loadgen.CompareBlobs(m, bg.blobs) != nil {
					purged++
				}
			}
			if len(marks) < 5 || purged == 0 {
				t.Fatalf("%d marks, %d with blobs purged from disk since: the test proves too little", len(marks), purged)
			}
			reported := missingIn(logs.String())
			exact, exactPurged := 0, 0
			for _, m := range marks {
				if e.checkBlobRestore(counted, m, reported) {
					exact++
					if loadgen.CompareBlobs(m, bg.blobs) != nil {
						exactPurged++
					}
				}
			}
			if exactPurged == 0 || exact < len(marks)/2 {
				t.Fatalf("%d of %d marks restored whole with their blobs, %d of them with blobs purged from disk since", exact, len(marks), exactPurged)
			}
			if n := promtest.Value(t, reg, "tailer_blobs_missing_total"); n < 1 {
				t.Errorf("tailer_blobs_missing_total = %v after a blob was committed without a file", n)
			}
			if out := logs.String(); !strings.Contains(out, gone.Name()) || !strings.Contains(out, "account 42") {
				t.Errorf("the log does not name the missing blob %s and account 42", gone.Name())
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
			t.Logf("%s: %d marks (%d with purged blobs), %d restored whole byte for byte (%d of them with purged blobs), the others lack only blobs reported missing; %d blob PUTs (%d distinct), %d object bytes, %v blob file bytes, missing %v",
				b.name, len(marks), purged, exact, exactPurged, sum(counted.puts), len(counted.puts), counted.bytes,
				promtest.Value(t, reg, "tailer_blob_bytes_shipped_total"), promtest.Value(t, reg, "tailer_blobs_missing_total"))
		})
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
	bg := openBlobGen(t, dir, 32, 200)
	e := &env{t: t, dir: dir, gen: bg.g, replica: openReplica(t, url, uploader.Options{})}
	e.load(200)
	logf, err := os.Create(filepath.Join(dir, "tailer.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("tailer log tail:\n%s", b)
		}
	})
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
	rng := rand.New(rand.NewSource(9))
	const kills = 6
	for range kills {
		time.Sleep(time.Duration(300+rng.Intn(1200)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		cmd = start()
	}
	time.Sleep(500 * time.Millisecond)
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
	logData, _ := os.ReadFile(logf.Name())
	reported := missingIn(string(logData))
	exact := 0
	for _, m := range marks {
		if e.checkBlobRestore(e.replica, m, reported) {
			exact++
		}
	}
	if exact < len(marks)/2 {
		t.Fatalf("only %d of %d marks restored whole with their blobs", exact, len(marks))
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
	t.Logf("%d SIGKILLs; %d marks, %d restored whole byte for byte, the others lack only the %d blobs reported missing; %d blob PUTs for %d blobs (%d uploaded twice)", kills, len(marks), exact, len(reported), total, len(versions), twice)
}
