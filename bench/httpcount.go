package bench

import (
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/tailer-backup/tailer/segment"
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

// confirmed is one segment the bucket acknowledged: the batches
// First..Last became durable in the replica at T.
type confirmed struct {
	First, Last uint64
	T           time.Time
}

// countingTransport sees every HTTP request the S3 backend makes, so the
// bench counts what a bucket would bill (lease renewals and retries
// included, which a Replica wrapper would miss) and timestamps the moment
// each segment is confirmed, without touching the agent's code path.
type countingTransport struct {
	base http.RoundTripper

	mu      sync.Mutex
	counts  Counts
	segs    []confirmed
	exports int // exports made visible
}

func newCountingTransport() *countingTransport {
	return &countingTransport{base: http.DefaultTransport, counts: Counts{}}
}

// RoundTrip classifies the request, forwards it, and on a 2xx answer to
// the request that makes a segment visible (a single PUT, or the POST that
// completes a multipart upload) records the segment's range and the time.
func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op, kind := classify(req)
	resp, err := c.base.RoundTrip(req)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[op]++
	c.counts[op+"/"+kind]++
	if err != nil || resp.StatusCode/100 != 2 || (kind != kindSegment && kind != kindExport) {
		return resp, err
	}
	q := req.URL.Query()
	visible := (req.Method == http.MethodPut && !q.Has("partNumber")) || (req.Method == http.MethodPost && q.Has("uploadId"))
	if visible && kind == kindExport {
		c.exports++
	}
	if visible && kind == kindSegment {
		if first, last, perr := segment.ParseSegmentName(path.Base(req.URL.Path)); perr == nil {
			c.segs = append(c.segs, confirmed{First: first, Last: last, T: now})
		}
	}
	return resp, err
}

func classify(req *http.Request) (op, kind string) {
	q := req.URL.Query()
	switch req.Method {
	case http.MethodPut, http.MethodPost:
		op = opPUT
	case http.MethodDelete:
		op = opDELETE
	default: // GET, HEAD
		op = opGET
		if q.Has("list-type") || q.Has("prefix") || q.Has("delimiter") {
			op = opLIST
		}
	}
	p := req.URL.Path
	switch {
	case op == opLIST:
		kind = kindOther
	case strings.Contains(p, "/segments/"):
		kind = kindSegment
	case strings.Contains(p, "/exports/"):
		kind = kindExport
	case strings.HasSuffix(p, "/lease.json"):
		kind = kindLease
	case strings.HasSuffix(p, "/generation.json"):
		kind = kindMeta
	default:
		kind = kindOther
	}
	return op, kind
}

// snapshot returns a copy of the counts so far.
func (c *countingTransport) snapshot() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Counts, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// confirmedSegments returns a copy of the confirmations so far.
func (c *countingTransport) confirmedSegments() []confirmed {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]confirmed(nil), c.segs...)
}

// covers reports whether a confirmed segment holds seq.
func (c *countingTransport) covers(seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.segs) - 1; i >= 0; i-- {
		if c.segs[i].First <= seq && seq <= c.segs[i].Last {
			return true
		}
	}
	return false
}

// exportConfirmed reports whether an export PUT has been acknowledged.
func (c *countingTransport) exportConfirmed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exports > 0
}
