package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
)

const testGen = "20261122T213000.000Z-3f9a1c"

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func segPut(prefix string, first, last uint64, ms, status int) Request {
	return Request{Method: http.MethodPut, Key: prefix + "/" + layout.SegmentKey(testGen, first, last), Visible: true, Status: status, ReqBytes: 100, T: at(ms)}
}

// TestConfirmations: only a 2xx to the request that makes a segment
// visible counts (a single PUT, a multipart completion), under the
// replica's own prefix, with the range layout.Parse reads from the key.
func TestConfirmations(t *testing.T) {
	p := "lag-1"
	part := segPut(p, 9, 9, 5, 200)
	part.Visible = false // an UploadPart
	complete := segPut(p, 10, 20, 40, 200)
	complete.Method = http.MethodPost
	reqs := []Request{
		segPut(p, 1, 4, 10, 200),
		segPut(p, 5, 8, 20, 503), // refused: not in the bucket
		part,
		segPut(p, 5, 8, 30, 200), // the retry
		complete,
		segPut("other", 21, 30, 50, 200), // another replica
		{Method: http.MethodPut, Key: p + "/" + layout.ExportKey(testGen, 3), Visible: true, Status: 200, T: at(1)}, // not a segment
		{Method: http.MethodPut, Key: p + "/generations/not-a-gen/segments/" + "x.tseg", Visible: true, Status: 200, T: at(2)},
	}
	got := confirmations(reqs, p)
	want := []confirmed{{1, 4, at(10)}, {5, 8, at(30)}, {10, 20, at(40)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("confirmations:\n got %+v\nwant %+v", got, want)
	}
	// Bytes: the accepted single PUTs and parts of segments (100 each:
	// 1-4, the 5-8 retry, the part, other's), not the refused PUT, the
	// completion's body or the export.
	if got := segmentBytes(reqs); got != 400 {
		t.Errorf("segmentBytes = %d, want 400", got)
	}
	if !exportVisible(reqs) || exportVisible(reqs[:5]) {
		t.Errorf("exportVisible: an export PUT answered 200 is in reqs, not in reqs[:5]")
	}
}

// TestLags: each commit is matched with the earliest confirmation of a
// segment whose range holds its sequence number; a later wide
// (compacted) segment or a retried upload does not replace it, and a
// commit no segment holds is unmatched.
func TestLags(t *testing.T) {
	commits := []commit{{3, at(0)}, {4, at(5)}, {7, at(20)}, {12, at(100)}, {30, at(200)}}
	segs := []confirmed{
		{First: 1, Last: 100, T: at(5000)}, // compaction, much later: covers all
		{First: 5, Last: 8, T: at(300)},
		{First: 1, Last: 4, T: at(250)},
		{First: 1, Last: 4, T: at(900)}, // the same segment again
		{First: 9, Last: 12, T: at(150)},
	}
	got, un := lags(commits, segs[1:])
	if want := []float64{0.25, 0.245, 0.28, 0.05}; !reflect.DeepEqual(got, want) || un != 1 {
		t.Errorf("lags without the wide segment = %v, %d unmatched; want %v, 1", got, un, want)
	}
	got, un = lags(commits, segs)
	if want := []float64{0.25, 0.245, 0.28, 0.05, 4.8}; !reflect.DeepEqual(got, want) || un != 0 {
		t.Errorf("lags = %v, %d unmatched; want %v, 0", got, un, want)
	}
	if got, un := lags(commits, nil); len(got) != 0 || un != len(commits) {
		t.Errorf("no segments: %v, %d unmatched", got, un)
	}
	if !covers(segs, 100) || covers(segs, 101) {
		t.Errorf("covers: 100 is in 1-100, 101 in none")
	}
}

func TestQuantileAndRatio(t *testing.T) {
	xs := func() []float64 { return []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6} }
	for _, c := range []struct {
		q    float64
		want float64
	}{{0, 1}, {0.1, 1}, {0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10}} {
		if got := quantile(xs(), c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantile(nil, 0.5); got != -1 {
		t.Errorf("quantile of nothing = %v, want -1 (n/a)", got)
	}
	for _, c := range []struct{ a, b, want float64 }{{1, 2, 0.5}, {3, 1.5, 2}, {0, 2, 0}, {-1, 2, -1}, {1, 0, -1}, {1, -1, -1}} {
		if got := ratio(c.a, c.b); got != c.want {
			t.Errorf("ratio(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	if got := perHour(5, 10*time.Second); got != 1800 {
		t.Errorf("perHour(5, 10s) = %v", got)
	}
}

// TestSummarize: rounds of one binary merge into one distribution and
// sums; CPU per MB is of raw batch bytes; a run without the metric makes
// the total unknown rather than too small.
func TestSummarize(t *testing.T) {
	p := "x"
	r1 := &lagRun{commits: []commit{{1, at(0)}, {2, at(0)}}, segs: confirmations([]Request{segPut(p, 1, 2, 100, 200)}, p),
		tx: 2, el: 2 * time.Second, drain: 3 * time.Second, counts: Counts{opPUT: 4, opPUT + "/" + kindSegment: 3}, cpu: 0.5, raw: 1e6, segB: 120}
	r2 := &lagRun{commits: []commit{{3, at(0)}, {4, at(0)}}, segs: confirmations([]Request{segPut(p, 3, 3, 300, 200)}, p),
		tx: 2, el: 2 * time.Second, drain: 2 * time.Second, counts: Counts{opPUT: 2}, cpu: 1.5, raw: 3e6, segB: 80}
	l := summarize(phaseSteady, Binary{Name: "baseline"}, 1000, []*lagRun{r1, r2})
	if l.Tx != 4 || l.Matched != 3 || l.Unmatched != 1 || l.Segments != 2 || l.PUTs != 6 || l.PUTsPerSec != 1.5 || l.TxPerSec != 1 {
		t.Errorf("sums: %+v", l)
	}
	if l.P50 != 0.1 || l.Max != 0.3 || l.CPUPerMB() != 0.5 || l.Cores() != 0.4 || l.SegmentBytes != 200 || l.PUTsPerHour() != 5400 {
		t.Errorf("p50 %v max %v CPU/MB %v cores %v segment bytes %d PUT/h %v", l.P50, l.Max, l.CPUPerMB(), l.Cores(), l.SegmentBytes, l.PUTsPerHour())
	}
	r2.raw = -1
	if l := summarize(phaseSteady, Binary{}, 1000, []*lagRun{r1, r2}); l.CPUPerMB() != -1 {
		t.Errorf("CPU/MB with a run missing tailer_batch_bytes_total = %v, want -1 (n/a)", l.CPUPerMB())
	}
}

// TestOrders: lag rounds swap the two binaries; overhead rounds rotate
// "without", candidate and baseline so each takes every place.
func TestOrders(t *testing.T) {
	bs := []Binary{{Name: "candidate"}, {Name: "baseline"}}
	names := func(bs []Binary) (out []string) {
		for _, b := range bs {
			out = append(out, b.Name)
		}
		return out
	}
	if got := names(alternate(bs, 0)); !reflect.DeepEqual(got, []string{"candidate", "baseline"}) {
		t.Errorf("round 1: %v", got)
	}
	if got := names(alternate(bs, 1)); !reflect.DeepEqual(got, []string{"baseline", "candidate"}) {
		t.Errorf("round 2: %v", got)
	}
	if bs[0].Name != "candidate" {
		t.Errorf("alternate changed its input")
	}
	all := []string{"", "candidate", "baseline"}
	for i, want := range [][]string{all, {"candidate", "baseline", ""}, {"baseline", "", "candidate"}, all} {
		if got := rotate(all, i); !reflect.DeepEqual(got, want) {
			t.Errorf("rotate round %d: %q, want %q", i+1, got, want)
		}
	}
}

func TestSummarizeOverhead(t *testing.T) {
	res := &OverheadResult{Rounds: []OverheadRound{
		{Runs: []OverheadRun{{Tx: 100}, {Binary: "candidate", Tx: 90, TailerCores: 0.2}, {Binary: "baseline", Tx: 80, TailerCores: 0.4}}},
		{Runs: []OverheadRun{{Binary: "candidate", Tx: 95, TailerCores: 0.4}, {Binary: "baseline", Tx: 70, TailerCores: 0.6}, {Tx: 100}}},
	}}
	summarizeOverhead(res, []Binary{{Name: "candidate"}, {Name: "baseline"}}, 10)
	c, b := res.Find("candidate"), res.Find("baseline")
	if res.WithoutTxPS != 10 || c.Ratio != 0.925 || b.Ratio != 0.75 || c.WithTxPS != 9.25 ||
		!reflect.DeepEqual(c.RoundRatios, []float64{0.9, 0.95}) || c.TailerCores < 0.299 || c.TailerCores > 0.301 {
		t.Errorf("overhead: without %v, candidate %+v, baseline %+v", res.WithoutTxPS, c, b)
	}
}

// TestGoals: issue 16's goals on the candidate, with the baseline's
// figure and the ratio; CPU per MB is met only against a baseline.
func TestGoals(t *testing.T) {
	lag := func(phase, bin string, p50, p99, puts, cpu float64, un int) LagResult {
		return LagResult{Phase: phase, Binary: bin, Rate: map[string]int{phaseSteady: 1000}[phase], P50: p50, P99: p99, PUTsPerSec: puts,
			CPUSeconds: cpu, RawBytes: 1e6, Unmatched: un}
	}
	rep := &Report{Tailing: &TailingResult{Lag: []LagResult{
		lag(phaseSteady, "candidate", 0.2, 0.45, 4, 1, 0), lag(phaseSteady, "baseline", 0.6, 1.4, 1, 1, 0),
		lag(phaseFull, "candidate", 0.5, 1.2, 9, 0.5, 0), lag(phaseFull, "baseline", 1, 2.5, 1, 1, 0),
	}, Costs: []Cost{{Phase: "idle", Binary: "candidate", Counts: Counts{opPUT: 2, opPUT + "/" + kindLease: 2}}}},
		Overhead: &OverheadResult{Binaries: []OverheadBinary{{Binary: "candidate", Ratio: 0.92}, {Binary: "baseline", Ratio: 0.95}}}}
	got := map[string]Goal{}
	for _, g := range goals(rep) {
		got[g.Name] = g
	}
	for name, want := range map[string]struct {
		met             bool
		measured, ratio string
	}{
		"lag p50 at 1000 tx/s":                                  {true, "200 ms", "0.33"},
		"lag p99 at 1000 tx/s":                                  {true, "450 ms", "0.32"},
		"PUTs at 1000 tx/s":                                     {true, "4.00/s", "4.00"},
		"lag p99 at full speed":                                 {false, "1.20 s", "0.48"},
		"tailer CPU per shipped MB (raw batches, full speed)":   {true, "0.500 CPU s/MB", "0.50"},
		"data PUTs while idle":                                  {true, "0 in 0 s (all PUTs: lease 2)", ""},
		"primary throughput with ÷ without tailer (full speed)": {true, "0.920", "0.97"},
	} {
		g, ok := got[name]
		if !ok {
			t.Errorf("no goal %q in %+v", name, got)
			continue
		}
		if g.Met != want.met || g.Measured != want.measured || g.Ratio != want.ratio {
			t.Errorf("%s: %+v, want met %v measured %q ratio %q", name, g, want.met, want.measured, want.ratio)
		}
	}
	if g := got["primary throughput with ÷ without tailer (full speed)"]; g.Baseline != "0.950 (change -0.030)" {
		t.Errorf("throughput baseline: %q", g.Baseline)
	}
	// Unmatched transactions fail a lag goal whatever the quantiles.
	rep.Tailing.Lag[0].Unmatched = 1
	rep.Tailing.Lag = rep.Tailing.Lag[:1]
	for _, g := range goals(rep) {
		if strings.HasPrefix(g.Name, "lag p") && g.Met {
			t.Errorf("%s met with an unmatched transaction", g.Name)
		}
	}
	// Without a baseline the CPU goal cannot be met.
	rep.Tailing.Lag = []LagResult{lag(phaseFull, "candidate", 0.5, 0.9, 9, 0.1, 0)}
	for _, g := range goals(rep) {
		if strings.HasPrefix(g.Name, "tailer CPU") && (g.Met || g.Baseline != "needs --baseline") {
			t.Errorf("CPU goal without a baseline: %+v", g)
		}
	}
}

func TestParseStatAndMetrics(t *testing.T) {
	line := "4242 (tailer run) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 1000000 2000 18446744073709551615\n"
	if got, err := parseStatCPU(line); err != nil || got != 3.25 {
		t.Errorf("parseStatCPU = %v, %v; want 3.25 s", got, err)
	}
	if _, err := parseStatCPU("4242 (x) S 1 2"); err == nil {
		t.Errorf("a short stat line parsed")
	}
	for _, c := range []struct {
		line string
		want float64
		ok   bool
	}{
		{"tailer_batch_bytes_total 1.2345e+06", 1234500, true},
		{"tailer_batch_bytes_total_x 5", 0, false},
		{"# HELP tailer_batch_bytes_total Raw", 0, false},
		{`tailer_batch_bytes_total{a="b"} 5`, 0, false},
	} {
		got, ok := metricValue(c.line, "tailer_batch_bytes_total")
		if ok != c.ok || got != c.want {
			t.Errorf("metricValue(%q) = %v, %v", c.line, got, ok)
		}
	}
}

// TestRecorder: the proxy forwards to its target with the client's Host
// (SigV4 signs it), records method, key, visibility, status and sizes,
// and since/under split the records by replica prefix.
func TestRecorder(t *testing.T) {
	var hosts []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts = append(hosts, r.Host)
		io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/missing") {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		w.Write([]byte("hello"))
	}))
	defer backend.Close()
	rec, err := startRecorder(backend.URL, "bench")
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	do := func(method, path string, body string) {
		req, _ := http.NewRequest(method, rec.Endpoint+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	seg := layout.SegmentKey(testGen, 1, 2)
	do(http.MethodPut, "/bench/a/"+seg, "12345678")
	do(http.MethodPut, "/bench/a/"+seg+"?partNumber=1&uploadId=x", "1")
	do(http.MethodPost, "/bench/a/"+seg+"?uploadId=x", "")
	do(http.MethodGet, "/bench?list-type=2&prefix=b/generations/", "")
	do(http.MethodGet, "/bench/b/missing", "")
	i := rec.mark()
	do(http.MethodDelete, "/bench/a/"+seg, "")

	a, next := rec.since(0, "a")
	if next != 6 || len(a) != 4 {
		t.Fatalf("since(0, a): %d requests, next %d: %+v", len(a), next, a)
	}
	if a[0].Key != "a/"+seg || !a[0].Visible || a[0].Status != 200 || a[0].ReqBytes != 8 || a[0].RespBytes != 5 || a[1].Visible || !a[2].Visible {
		t.Errorf("records: %+v", a)
	}
	b, _ := rec.since(0, "b")
	if len(b) != 2 || !b[0].List || b[0].Key != "b/generations/" || b[1].Status != 404 {
		t.Errorf("b's records: %+v", b)
	}
	if c := countOf(b); c[opLIST] != 1 || c[opGET] != 1 || c[opGET+"/"+kindOther] != 1 {
		t.Errorf("b's counts: %v", c)
	}
	if c := countOf(a); c[opPUT] != 3 || c[opPUT+"/"+kindSegment] != 3 || c[opDELETE] != 1 {
		t.Errorf("a's counts: %v", c)
	}
	if late, _ := rec.since(i, "a"); len(late) != 1 || late[0].Method != http.MethodDelete {
		t.Errorf("since(mark): %+v", late)
	}
	for _, h := range hosts {
		if "http://"+h != rec.Endpoint {
			t.Errorf("backend saw Host %q, want the proxy's %q (the signed one)", h, rec.Endpoint)
		}
	}
}
