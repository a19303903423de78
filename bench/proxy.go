package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request classes, as a bucket bills them: PUT also counts POST (multipart
// create/complete) and GET also counts HEAD, as S3 prices them together.
const (
	opPUT    = "PUT"
	opGET    = "GET"
	opLIST   = "LIST"
	opDELETE = "DELETE"
)

// Object kinds, from the key, so a PUT count can say what it was for
// (a segment, an export, the lease renewal...).
const (
	kindSegment = "segment"
	kindExport  = "export"
	kindLease   = "lease"
	kindMeta    = "meta"
	kindOther   = "other"
)

// Counts is the number of S3 requests per class and per class/kind
// ("PUT/segment").
type Counts map[string]int64

// Sub returns c - o, for the requests made between two snapshots.
func (c Counts) Sub(o Counts) Counts {
	out := Counts{}
	for k, v := range c {
		if d := v - o[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Request is one S3 request a tailer process made through the proxy, as
// the bucket answered it.
type Request struct {
	Method string
	// Key is the object key inside the bucket ("" for a bucket-level
	// request such as a LIST).
	Key string
	// Visible: a PUT without partNumber or the POST completing a
	// multipart upload, i.e. the request after whose 2xx answer the
	// object is in the bucket.
	Visible bool
	List    bool // a GET of the bucket with list parameters
	Status  int  // 0 when MinIO could not be reached
	// ReqBytes is the request body's declared length (an upload's size;
	// -1 when chunked), RespBytes the response's (a download's).
	ReqBytes, RespBytes int64
	// T is when MinIO's response headers came back to the proxy: for a
	// visible PUT, the moment the object became durable in the bucket.
	T time.Time
}

// recorder is a reverse proxy in front of MinIO that records every
// request a `tailer` subprocess makes: the bench sees exactly what a
// bucket would bill and when each object became visible, from outside
// the process, so any tailer binary (today's main as the baseline, a
// candidate) is measured the same way.
type recorder struct {
	bucket string
	srv    *http.Server
	ln     net.Listener
	// Endpoint is the proxy's base URL, the S3 endpoint a tailer gets.
	Endpoint string

	mu   sync.Mutex
	reqs []Request
}

// startRecorder listens on a free loopback port and forwards to target
// (MinIO's endpoint). Requests are signed for the proxy's host, which the
// proxy keeps (SigV4 covers the Host header), so MinIO accepts them.
func startRecorder(target, bucket string) (*recorder, error) {
	tu, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("proxy target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	r := &recorder{bucket: bucket, ln: ln, Endpoint: "http://" + ln.Addr().String()}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(tu)
			pr.Out.Host = pr.In.Host // the signed host
		},
		Transport: tr,
		ModifyResponse: func(resp *http.Response) error {
			r.record(resp.Request, resp.StatusCode, resp.ContentLength, time.Now())
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			r.record(req, 0, 0, time.Now())
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	r.srv = &http.Server{Handler: rp, ReadHeaderTimeout: time.Minute}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *recorder) record(req *http.Request, status int, respBytes int64, t time.Time) {
	q := req.URL.Query()
	x := Request{Method: req.Method, Key: keyOf(req.URL.Path, r.bucket), Status: status, ReqBytes: req.ContentLength, RespBytes: respBytes, T: t}
	if d, err := strconv.ParseInt(req.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64); err == nil {
		x.ReqBytes = d // aws-chunked: the object's size, not the framing's
	}
	x.Visible = (req.Method == http.MethodPut && !q.Has("partNumber")) || (req.Method == http.MethodPost && q.Has("uploadId"))
	x.List = (req.Method == http.MethodGet || req.Method == http.MethodHead) && (q.Has("list-type") || q.Has("prefix") || q.Has("delimiter"))
	if x.List {
		x.Key = q.Get("prefix") // what it lists, for under
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, x)
	r.mu.Unlock()
}

// keyOf is the object key of a path-style request path ("/bucket/key").
func keyOf(p, bucket string) string {
	p = strings.TrimPrefix(p, "/")
	if k, ok := strings.CutPrefix(p, bucket+"/"); ok {
		return k
	}
	return ""
}

// since returns the requests recorded under prefix+"/" from index i on,
// and the index to pass next time.
func (r *recorder) since(i int, prefix string) ([]Request, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Request
	for _, x := range r.reqs[min(i, len(r.reqs)):] {
		if under(x, prefix) {
			out = append(out, x)
		}
	}
	return out, len(r.reqs)
}

// mark is the index since takes to see only the requests from now on.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// within returns the requests answered from t0 to t1 inclusive.
func within(reqs []Request, t0, t1 time.Time) []Request {
	var out []Request
	for _, x := range reqs {
		if !x.T.Before(t0) && !x.T.After(t1) {
			out = append(out, x)
		}
	}
	return out
}

// under reports whether x is about prefix: its key (a LIST's prefix) is
// below prefix, or it names no key at all (a bucket-level request,
// counted with the one tailer process that runs at a time).
func under(x Request, prefix string) bool {
	return x.Key == "" || x.Key == prefix || strings.HasPrefix(x.Key, prefix+"/")
}

// Close stops the proxy.
func (r *recorder) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// classify gives a request's billing class and what it was for.
func classify(x Request) (op, kind string) {
	switch x.Method {
	case http.MethodPut, http.MethodPost:
		op = opPUT
	case http.MethodDelete:
		op = opDELETE
	default: // GET, HEAD
		op = opGET
		if x.List {
			op = opLIST
		}
	}
	switch k := x.Key; {
	case op == opLIST:
		kind = kindOther
	case strings.Contains(k, "/segments/"):
		kind = kindSegment
	case strings.Contains(k, "/exports/"):
		kind = kindExport
	case strings.HasSuffix(k, "/lease.json"):
		kind = kindLease
	case strings.HasSuffix(k, "/generation.json"):
		kind = kindMeta
	default:
		kind = kindOther
	}
	return op, kind
}

// countOf counts requests by class and class/kind.
func countOf(reqs []Request) Counts {
	c := Counts{}
	for _, x := range reqs {
		op, kind := classify(x)
		c[op]++
		c[op+"/"+kind]++
	}
	return c
}
