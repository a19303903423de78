package uploader

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestS3RetryBudget: one logical request is sent at most as often as the
// package documentation says, whatever fails: S3RetryAttempts times for
// plain requests, once for a conditional write (the lease re-reads the
// object to learn whether a lost write was applied), never attempts of
// one layer multiplied by another's.
func TestS3RetryBudget(t *testing.T) {
	t.Parallel()
	fails := map[string]func(w http.ResponseWriter){
		"500": func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) },
		"503 with Retry-After": func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		},
		"dropped response": func(w http.ResponseWriter) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		},
	}
	ops := []struct {
		name string
		want int
		op   func(ctx context.Context, r Replica) error
	}{
		{"get", S3RetryAttempts, func(ctx context.Context, r Replica) error { _, err := r.Get(ctx, "k"); return err }},
		{"put", S3RetryAttempts, func(ctx context.Context, r Replica) error { return r.Put(ctx, "k", bytes.NewReader([]byte("abc")), 3) }},
		{"list", S3RetryAttempts, func(ctx context.Context, r Replica) error { _, err := r.List(ctx, ""); return err }},
		{"conditional create", 1, func(ctx context.Context, r Replica) error {
			_, err := r.PutIf(ctx, "lease.json", []byte("{}"), "")
			return err
		}},
		{"conditional replace", 1, func(ctx context.Context, r Replica) error {
			_, err := r.PutIf(ctx, "lease.json", []byte("{}"), `"etag"`)
			return err
		}},
	}
	for fname, fail := range fails {
		for _, op := range ops {
			t.Run(fname+"/"+op.name, func(t *testing.T) {
				t.Parallel()
				var n atomic.Int64
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					n.Add(1)
					fail(w)
				}))
				defer srv.Close()
				r, err := Open(context.Background(), "s3://bucket/p?endpoint="+srv.URL+"&path-style=true&region=us-east-1",
					Options{AccessKeyID: "a", SecretAccessKey: "b", retryWaits: [2]time.Duration{time.Millisecond, 5 * time.Millisecond}})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := op.op(ctx, r); err == nil {
					t.Fatal("the operation succeeded against a failing server")
				} else if ctx.Err() != nil {
					t.Fatalf("gave up only when the test's deadline passed: %v", err)
				}
				if got := int(n.Load()); got != op.want {
					t.Fatalf("%d attempts of one request, want %d", got, op.want)
				}
			})
		}
	}
}

// TestS3PreconditionFailedIsSentOnce: a 412 is an answer, not a fault: no
// layer retries it, and PutIf reports ErrPreconditionFailed.
func TestS3PreconditionFailedIsSentOnce(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusPreconditionFailed)
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`))
	}))
	defer srv.Close()
	r, err := Open(context.Background(), "s3://bucket/p?endpoint="+srv.URL+"&path-style=true&region=us-east-1", Options{AccessKeyID: "a", SecretAccessKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutIf(context.Background(), "lease.json", []byte("{}"), `"etag"`); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("PutIf = %v, want ErrPreconditionFailed", err)
	}
	if n.Load() != 1 {
		t.Fatalf("%d attempts, want 1", n.Load())
	}
}
