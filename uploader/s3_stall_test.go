package uploader

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestS3StalledResponseIsRetried: a server that takes the request and
// never answers (a stalled proxy, a hung MinIO) must fail that attempt
// after ResponseTimeout so it is retried, not hold the call until the
// caller's context ends. Here the first request stalls and the retry
// gets the object.
func TestS3StalledResponseIsRetried(t *testing.T) {
	release := make(chan struct{})
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			select { // stall: no status line, no headers
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Length", "5")
		w.Header().Set("ETag", `"x"`)
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	defer close(release)
	r, err := Open(context.Background(), "s3://bucket/p?endpoint="+srv.URL+"&path-style=true&region=us-east-1",
		Options{AccessKeyID: "a", SecretAccessKey: "b", ResponseTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := r.Get(ctx, "k")
	if err != nil {
		t.Fatalf("get after a stalled first attempt: %v (requests %d)", err, requests.Load())
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v", b, err)
	}
	if ctx.Err() != nil || requests.Load() < 2 {
		t.Fatalf("context %v, %d requests: the stalled attempt was not cut short and retried", ctx.Err(), requests.Load())
	}
}
