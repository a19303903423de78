package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/conformance"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/layout"
)

// fakeReplica is an in-memory Replica whose Put fails a set number of
// times, and which checks on every Put that the spool still holds the
// object (nothing removed before the upload is confirmed).
type fakeReplica struct {
	spool *Spool

	mu       sync.Mutex
	objs     map[string][]byte
	order    []string // keys in order of successful Put
	puts     map[string]int
	failures int           // Puts still to fail
	block    bool          // Put waits for ctx to end
	early    []string      // violations: Put of a key no longer in the spool
	entered  chan struct{} // signalled when a blocking Put starts
}

func newFake(s *Spool, failures int) *fakeReplica {
	return &fakeReplica{spool: s, objs: map[string][]byte{}, puts: map[string]int{}, failures: failures, entered: make(chan struct{}, 1)}
}

func (f *fakeReplica) String() string { return "fake://" }

func (f *fakeReplica) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if !slices.Contains(pendingKeysNoT(f.spool), key) {
		f.mu.Lock()
		f.early = append(f.early, key)
		f.mu.Unlock()
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("fake: %s: read %d bytes, size %d", key, len(b), size)
	}
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block {
		select {
		case f.entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return errors.New("fake: 503 slow down")
	}
	f.objs[key] = b
	f.order = append(f.order, key)
	f.puts[key]++
	return nil
}

func (f *fakeReplica) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objs[key]
	if !ok {
		return nil, uploader.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *fakeReplica) List(ctx context.Context, prefix string) ([]uploader.ObjectInfo, error) {
	return nil, errors.New("fake: not implemented")
}

func (f *fakeReplica) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objs, key)
	return nil
}

func (f *fakeReplica) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	return nil, errors.New("fake: ReadRange not used")
}
func (f *fakeReplica) ListAfter(ctx context.Context, prefix, startAfter string) ([]uploader.ObjectInfo, error) {
	return nil, errors.New("fake: ListAfter not used")
}
func (f *fakeReplica) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	return nil, "", errors.New("fake: GetVersioned not used")
}
func (f *fakeReplica) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	return "", errors.New("fake: PutIf not used")
}
func (f *fakeReplica) Identity() string { return f.String() }

func (f *fakeReplica) uploaded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.order)
}

func pendingKeysNoT(s *Spool) []string {
	ents, _ := s.Pending()
	var out []string
	for _, e := range ents {
		out = append(out, e.Key)
	}
	return out
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

func newTestShipper(t *testing.T, s *Spool, r uploader.Replica) (*Shipper, *prometheus.Registry, *logBuffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sh := NewShipper(s, r, reg, log)
	sh.minBackoff, sh.maxBackoff, sh.rescan = time.Millisecond, 5*time.Millisecond, time.Hour
	return sh, reg, logs
}

// value reads a counter or gauge the way a scrape would.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func addN(t *testing.T, s *Spool, prefix string, n int) (keys []string, bytes int) {
	t.Helper()
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("%s/%03d", prefix, i)
		data := strings.Repeat("x", 10+i)
		if err := s.Add(k, []byte(data)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		bytes += len(data)
	}
	return keys, bytes
}

// TestShipperRetriesUntilSuccess: a replica failing several times in a
// row gets every object, in commit order, and the spool keeps each object
// until its upload succeeded; one log line per state change.
func TestShipperRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	keys, size := addN(t, s, "seg", 5)
	fake := newFake(s, 4)
	sh, reg, logs := newTestShipper(t, s, fake)
	if got := value(t, sh.Metrics().SpoolBytes); got != float64(size) {
		t.Fatalf("spool_bytes before = %v, want %d", got, size)
	}
	if err := sh.Drain(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := fake.uploaded(); !slices.Equal(got, keys) {
		t.Fatalf("uploaded %q, want %q", got, keys)
	}
	if len(fake.early) != 0 {
		t.Fatalf("removed from the spool before upload: %q", fake.early)
	}
	wantPending(t, s)
	m := sh.Metrics()
	for name, c := range map[string]struct {
		c    prometheus.Collector
		want float64
	}{
		"objects":     {m.UploadedObjects, 5},
		"bytes":       {m.UploadedBytes, float64(size)},
		"errors":      {m.UploadErrors, 4},
		"spool_bytes": {m.SpoolBytes, 0},
	} {
		if got := value(t, c.c); got != c.want {
			t.Errorf("%s = %v, want %v", name, got, c.want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := []string{"tailer_spool_bytes", "tailer_upload_bytes_total", "tailer_upload_errors_total", "tailer_upload_lag_seconds", "tailer_upload_objects_total"}
	if !slices.Equal(names, want) {
		t.Fatalf("registered %q, want %q", names, want)
	}
	if f, r := logs.count("uploads failing"), logs.count("uploads recovered"); f != 1 || r != 1 {
		t.Fatalf("logged failing %d times and recovered %d times, want once each:\n%s", f, r, logs.buf.String())
	}
}

// TestShipperRun: Run ships what was pending at start first, then new
// entries on Notify, and returns nil on cancellation.
func TestShipperRun(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	old, _ := addN(t, s, "old", 3)
	fake := newFake(s, 1)
	sh, _, _ := newTestShipper(t, s, fake)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()

	waitFor(t, func() bool { return len(fake.uploaded()) == 3 })
	if got := fake.uploaded(); !slices.Equal(got, old) {
		t.Fatalf("uploaded %q, want %q first", got, old)
	}
	for i := 0; i < 5; i++ {
		k := fmt.Sprintf("new/%d", i)
		if err := s.Add(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
		sh.Notify()
		waitFor(t, func() bool { return slices.Contains(fake.uploaded(), k) })
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v on cancellation, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	wantPending(t, s)
}

// TestShipperRescanWithoutNotify: a missed Notify only delays shipping.
func TestShipperRescanWithoutNotify(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	fake := newFake(s, 0)
	sh, _, _ := newTestShipper(t, s, fake)
	sh.rescan = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sh.Run(ctx)
	time.Sleep(30 * time.Millisecond)
	s.Add("quiet", []byte("x"))
	waitFor(t, func() bool { return len(fake.uploaded()) == 1 })
}

// TestShipperShutdownMidUpload: an upload cut short by shutdown stays in
// the spool and is not counted as a replica error.
func TestShipperShutdownMidUpload(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	s.Add("k", []byte("v"))
	fake := newFake(s, 0)
	fake.block = true
	sh, _, logs := newTestShipper(t, s, fake)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	<-fake.entered
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantPending(t, s, "k")
	if got := value(t, sh.Metrics().UploadErrors); got != 0 {
		t.Fatalf("errors = %v, want 0", got)
	}
	if logs.count("uploads failing") != 0 {
		t.Fatalf("shutdown logged as a failure:\n%s", logs.buf.String())
	}
}

// TestShipperDrainDeadline: when the replica stays down, Drain gives up at
// the deadline, says what is left, and keeps it spooled.
func TestShipperDrainDeadline(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	s.Add("a", []byte("123"))
	s.Add("b", []byte("45"))
	fake := newFake(s, 1<<30)
	sh, _, logs := newTestShipper(t, s, fake)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := sh.Drain(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "2 objects (5 bytes) still pending") {
		t.Fatalf("Drain = %v", err)
	}
	wantPending(t, s, "a", "b")
	if n := value(t, sh.Metrics().UploadErrors); n < 10 {
		t.Fatalf("only %v attempts in 200ms with a 5ms backoff cap", n)
	}
	if f := logs.count("uploads failing"); f != 1 {
		t.Fatalf("logged failing %d times, want once:\n%s", f, logs.buf.String())
	}
}

// TestShipperRunAndDrainTogether: on SIGTERM Drain may overlap with Run;
// no object is uploaded twice or lost.
func TestShipperRunAndDrainTogether(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	keys, _ := addN(t, s, "k", 60)
	fake := newFake(s, 3)
	sh, _, _ := newTestShipper(t, s, fake)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sh.Run(ctx)
	if err := sh.Drain(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s)
	got := fake.uploaded()
	if !slices.Equal(got, keys) {
		t.Fatalf("uploaded %d objects %q, want each of %d once, in order", len(got), got, len(keys))
	}
	if got := value(t, sh.Metrics().UploadedObjects); got != 60 {
		t.Fatalf("objects = %v, want 60", got)
	}
}

// TestShipperToFileReplica: end to end through a real backend.
func TestShipperToFileReplica(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	r := newTestFileReplica(t)
	big := conformance.RandomBytes(5<<20, 7)
	f, err := s.Create("generations/g/exports/0000000000000010.texp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	f.Write(big[:1<<20])
	f.Write(big[1<<20:])
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	s.Add("generations/g/segments/0000000000000011-0000000000000012.tseg", []byte("seg"))
	sh := NewShipper(s, r, nil, nil) // nil registerer and logger are allowed
	if err := sh.Drain(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := conformance.Get(t, r, "generations/g/exports/0000000000000010.texp"); !bytes.Equal(got, big) {
		t.Fatal("export content differs")
	}
	conformance.WantKeys(t, r, "generations/g/",
		"generations/g/exports/0000000000000010.texp",
		"generations/g/segments/0000000000000011-0000000000000012.tseg")
	wantPending(t, s)
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	sh := &Shipper{minBackoff: 500 * time.Millisecond, maxBackoff: 30 * time.Second}
	prevCap := time.Duration(0)
	for attempt := 1; attempt <= 100; attempt++ {
		capd := min(sh.minBackoff<<min(attempt-1, 20), sh.maxBackoff)
		for i := 0; i < 20; i++ {
			d := sh.backoff(attempt)
			if d < capd/2 || d > capd {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, d, capd/2, capd)
			}
		}
		if capd < prevCap {
			t.Fatalf("attempt %d: cap shrank", attempt)
		}
		prevCap = capd
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// recFake is a Replica that records every Put as an interval of a logical
// clock (start, end), the most Puts in flight at once, and fails the Puts
// fail picks; each Put takes delay().
type recFake struct {
	delay func() time.Duration
	fail  func(key string, try int) bool // try counts from 0 per key

	mu          sync.Mutex
	clock       int
	inFlight    int
	maxInFlight int
	tries       map[string]int
	puts        []recPut
}

type recPut struct {
	key        string
	start, end int
	ok         bool
}

func newRecFake(delay func() time.Duration, fail func(string, int) bool) *recFake {
	return &recFake{delay: delay, fail: fail, tries: map[string]int{}}
}

func (f *recFake) String() string { return "rec://" }

func (f *recFake) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	f.mu.Lock()
	f.clock++
	p := recPut{key: key, start: f.clock}
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	try := f.tries[key]
	f.tries[key]++
	f.mu.Unlock()
	_, rerr := io.Copy(io.Discard, r)
	d := time.Duration(0)
	if f.delay != nil {
		d = f.delay()
	}
	slept := sleepCtx(ctx, d)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
	f.clock++
	p.end = f.clock
	p.ok = rerr == nil && slept && (f.fail == nil || !f.fail(key, try))
	f.puts = append(f.puts, p)
	if !slept {
		return ctx.Err()
	}
	if !p.ok {
		return fmt.Errorf("rec: put %s: 503 slow down", key)
	}
	return nil
}

func (f *recFake) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return nil, uploader.ErrNotFound
}

func (f *recFake) List(ctx context.Context, prefix string) ([]uploader.ObjectInfo, error) {
	return nil, errors.New("rec: not implemented")
}

func (f *recFake) Delete(ctx context.Context, key string) error { return nil }
func (f *recFake) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	return nil, errors.New("rec: ReadRange not used")
}
func (f *recFake) ListAfter(ctx context.Context, prefix, startAfter string) ([]uploader.ObjectInfo, error) {
	return nil, errors.New("rec: ListAfter not used")
}
func (f *recFake) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	return nil, "", errors.New("rec: GetVersioned not used")
}
func (f *recFake) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	return "", errors.New("rec: PutIf not used")
}
func (f *recFake) Identity() string { return f.String() }

// checkOrder fails t unless every Put of a non-blob object started after
// the successful Put of every object committed before it ended.
func (f *recFake) checkOrder(t *testing.T, committed []string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	okEnd := map[string]int{}
	for _, p := range f.puts {
		if p.ok {
			if e, seen := okEnd[p.key]; !seen || p.end < e {
				okEnd[p.key] = p.end
			}
		}
	}
	pos := map[string]int{}
	for i, k := range committed {
		pos[k] = i
	}
	for _, p := range f.puts {
		if _, b := layout.ParseBlobKey(p.key); b {
			continue
		}
		for _, k := range committed[:pos[p.key]] {
			if e, ok := okEnd[k]; !ok || e > p.start {
				t.Fatalf("PUT %s started (clock %d) before %s, committed earlier, was uploaded (ok end %d, uploaded %v)",
					p.key, p.start, k, e, ok)
			}
		}
	}
}

func (f *recFake) uploadedOK() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := map[string]int{}
	for _, p := range f.puts {
		if p.ok {
			n[p.key]++
		}
	}
	return n
}

func testBlobKey(i int) string {
	var h blobfs.Hash
	binary.BigEndian.PutUint64(h[:], uint64(i)+1)
	return layout.BlobKey(h)
}

// addMix commits n entries, each a blob object with probability blobs
// (else a segment-like key), and returns the keys in commit order.
func addMix(t *testing.T, s *Spool, rng *rand.Rand, n int, blobs float64, next *int) []string {
	t.Helper()
	var keys []string
	for range n {
		*next++
		k := fmt.Sprintf("segments/%06d", *next)
		if rng.Float64() < blobs {
			k = testBlobKey(*next)
		}
		if err := s.Add(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// TestShipperBlobsConcurrently: a run of blob objects is uploaded with
// several in flight, never more than the bound.
func TestShipperBlobsConcurrently(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	var keys []string
	for i := range 24 {
		k := testBlobKey(i)
		if err := s.Add(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	fake := newRecFake(func() time.Duration { return 10 * time.Millisecond }, nil)
	sh, _, _ := newTestShipper(t, s, fake)
	sh.parallel = 4
	if err := sh.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s)
	if got := len(fake.uploadedOK()); got != len(keys) {
		t.Fatalf("uploaded %d distinct objects, want %d", got, len(keys))
	}
	if m := fake.maxInFlight; m < 2 || m > sh.parallel {
		t.Fatalf("at most %d blob uploads in flight, want 2..%d", m, sh.parallel)
	}
}

// TestShipperMixedOrder: under a random mix of blob objects and segments,
// committed while Run and Drain ship side by side, no segment's PUT
// starts before every object committed before it was uploaded, and
// everything is uploaded exactly once.
func TestShipperMixedOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		blobs float64
		seed  uint64
	}{
		{"mostly blobs", 0.85, 1},
		{"half blobs", 0.5, 2},
		{"mostly segments", 0.2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openSpool(t, t.TempDir())
			rng := rand.New(rand.NewPCG(tc.seed, 7))
			var drng sync.Mutex
			fake := newRecFake(func() time.Duration {
				drng.Lock()
				defer drng.Unlock()
				return time.Duration(rng.IntN(1500)) * time.Microsecond
			}, nil)
			sh, _, _ := newTestShipper(t, s, fake)
			next := 0
			drng.Lock()
			committed := addMix(t, s, rng, 100, tc.blobs, &next)
			drng.Unlock()
			ctx, cancel := context.WithCancel(context.Background())
			runDone := make(chan error, 1)
			go func() { runDone <- sh.Run(ctx) }()
			for range 10 {
				drng.Lock()
				committed = append(committed, addMix(t, s, rng, 20, tc.blobs, &next)...)
				drng.Unlock()
				sh.Notify()
				time.Sleep(time.Millisecond)
			}
			if err := sh.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := <-runDone; err != nil {
				t.Fatal(err)
			}
			wantPending(t, s)
			fake.checkOrder(t, committed)
			got := fake.uploadedOK()
			for _, k := range committed {
				if got[k] != 1 {
					t.Fatalf("%s uploaded %d times, want once", k, got[k])
				}
			}
		})
	}
}

// TestShipperBlobFailureRestarts: a failing blob upload makes the batch
// start again from the oldest pending entry; the segment after it is not
// uploaded before the blob is.
func TestShipperBlobFailureRestarts(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	var committed []string
	add := func(k string) {
		if err := s.Add(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
		committed = append(committed, k)
	}
	add("segments/000001")
	for i := range 12 {
		add(testBlobKey(i))
	}
	add("segments/000002")
	add(testBlobKey(100))
	add("segments/000003")
	bad := testBlobKey(7)
	fake := newRecFake(func() time.Duration { return time.Millisecond }, func(key string, try int) bool {
		return key == bad && try < 3
	})
	sh, _, _ := newTestShipper(t, s, fake)
	if err := sh.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s)
	fake.checkOrder(t, committed)
	if n := fake.tries[bad]; n != 4 {
		t.Fatalf("%s tried %d times, want 4", bad, n)
	}
	if got := value(t, sh.Metrics().UploadErrors); got != 3 {
		t.Fatalf("upload errors = %v, want 3", got)
	}
	if n := fake.uploadedOK()["segments/000002"]; n != 1 {
		t.Fatalf("segments/000002 uploaded %d times, want once", n)
	}
}

// TestShipperGuardStopsBlobs: once the guard refuses, no more uploads
// start (each that started passed the guard), Drain says why, and the rest
// stays in the spool, the segment after the blobs included.
func TestShipperGuardStopsBlobs(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	for i := range 16 {
		if err := s.Add(testBlobKey(i), []byte("b")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add("segments/000001", []byte("seg")); err != nil {
		t.Fatal(err)
	}
	fake := newRecFake(func() time.Duration { return 2 * time.Millisecond }, nil)
	sh, _, _ := newTestShipper(t, s, fake)
	const allowed = 5
	var checks, passed atomic.Int64
	sh.Guard(func() error {
		if checks.Add(1) > allowed {
			return errNotHeld
		}
		passed.Add(1)
		return nil
	})
	err := sh.Drain(context.Background())
	if !errors.Is(err, ErrGuarded) || !errors.Is(err, errNotHeld) {
		t.Fatalf("Drain = %v, want ErrGuarded wrapping the guard's error", err)
	}
	got := fake.uploadedOK()
	if len(got) != int(passed.Load()) || len(got) > allowed {
		t.Fatalf("uploaded %d objects, %d passed the guard (allowed %d)", len(got), passed.Load(), allowed)
	}
	if got["segments/000001"] != 0 {
		t.Fatal("the segment was uploaded although the guard refused")
	}
	if n := len(pendingKeys(t, s)); n != 17-len(got) {
		t.Fatalf("%d entries pending, want %d", n, 17-len(got))
	}
}

// TestShipperListingMissesEntry: a listing that misses an entry being
// committed (a directory read racing a rename) but shows a later one must
// not let the later segment go first: the batch stops at the gap.
func TestShipperListingMissesEntry(t *testing.T) {
	t.Parallel()
	s := openSpool(t, t.TempDir())
	committed := []string{"segments/000001", testBlobKey(1), testBlobKey(2), "segments/000002"}
	for _, k := range committed {
		if err := s.Add(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	fake := newRecFake(nil, nil)
	sh, _, _ := newTestShipper(t, s, fake)
	calls := 0
	sh.list = func() ([]SpoolEntry, error) {
		ents, err := s.Pending()
		calls++
		if calls == 1 && err == nil && len(ents) == 4 {
			ents = slices.Delete(ents, 2, 3) // the second blob is not seen
		}
		return ents, err
	}
	if err := sh.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantPending(t, s)
	fake.checkOrder(t, committed)
}
