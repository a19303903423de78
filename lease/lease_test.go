package lease

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/miniotest"
	"github.com/tailer-backup/tailer/uploader"
)

func replicas(t *testing.T) map[string]func(t *testing.T) uploader.Replica {
	return map[string]func(t *testing.T) uploader.Replica{
		"file": func(t *testing.T) uploader.Replica {
			r, err := uploader.Open(context.Background(), "file://"+filepath.Join(t.TempDir(), "b"), uploader.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		"minio": func(t *testing.T) uploader.Replica {
			srv := miniotest.Start(t)
			srv.CreateBucket("lease")
			r, err := uploader.Open(context.Background(), srv.URL("lease", "p"), uploader.Options{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
	}
}

func TestLease(t *testing.T) {
	ctx := context.Background()
	for name, open := range replicas(t) {
		t.Run(name, func(t *testing.T) {
			r := open(t)
			a, err := Acquire(ctx, r, Options{TTL: time.Minute, DB: "/var/lib/stalwart"})
			if err != nil {
				t.Fatal(err)
			}
			// A second tailer is refused, with the holder named.
			_, err = Acquire(ctx, r, Options{TTL: time.Minute})
			if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "/var/lib/stalwart") || !strings.Contains(err.Error(), "pass Options.Force") {
				t.Fatalf("second acquire: %v", err)
			}
			if err := a.Renew(ctx); err != nil {
				t.Fatalf("renew: %v", err)
			}
			// Released: the next one gets it at once.
			if err := a.Release(ctx); err != nil {
				t.Fatal(err)
			}
			b, err := Acquire(ctx, r, Options{TTL: 300 * time.Millisecond})
			if err != nil {
				t.Fatalf("acquire after release: %v", err)
			}
			// Not renewed: it expires and a waiting tailer takes over; the
			// old holder learns it lost the lease.
			c, err := Acquire(ctx, r, Options{TTL: time.Minute, Wait: 5 * time.Second})
			if err != nil {
				t.Fatalf("acquire after expiry: %v", err)
			}
			if err := b.Renew(ctx); !errors.Is(err, ErrLost) {
				t.Fatalf("renew of an expired, taken lease: %v, want ErrLost", err)
			}
			// Forced takeover of a live lease.
			d, err := Acquire(ctx, r, Options{TTL: time.Minute, Force: true})
			if err != nil {
				t.Fatalf("forced takeover: %v", err)
			}
			if err := c.Renew(ctx); !errors.Is(err, ErrLost) {
				t.Fatalf("renew after a forced takeover: %v, want ErrLost", err)
			}
			if err := d.Release(ctx); err != nil {
				t.Fatal(err)
			}
			// Keep renews, and reports a takeover through its callback.
			x, err := Acquire(ctx, r, Options{TTL: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			kctx, stop := context.WithTimeout(ctx, 30*time.Second)
			defer stop()
			lost := make(chan error, 1)
			go x.Keep(kctx, func(err error) { lost <- err })
			time.Sleep(2500 * time.Millisecond) // longer than the TTL: held only thanks to several renewals
			if _, err := Acquire(ctx, r, Options{TTL: time.Minute}); !errors.Is(err, ErrHeld) {
				select {
				case lerr := <-lost:
					t.Fatalf("a kept lease was not held: %v (Keep had reported %v)", err, lerr)
				default:
				}
				t.Fatalf("a kept lease was not held: %v", err)
			}
			if _, err := Acquire(ctx, r, Options{TTL: time.Minute, Force: true}); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-lost:
				if !errors.Is(err, ErrLost) {
					t.Fatalf("Keep reported %v, want ErrLost", err)
				}
			case <-kctx.Done():
				t.Fatal("Keep did not report the takeover")
			}
		})
	}
}

// TestLeaseRace: of eight tailers starting at once, exactly one wins.
func TestLeaseRace(t *testing.T) {
	for name, open := range replicas(t) {
		t.Run(name, func(t *testing.T) {
			r := open(t)
			var wg sync.WaitGroup
			var mu sync.Mutex
			won := 0
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := Acquire(context.Background(), r, Options{TTL: time.Minute}); err == nil {
						mu.Lock()
						won++
						mu.Unlock()
					} else if !errors.Is(err, ErrHeld) {
						t.Errorf("acquire: %v", err)
					}
				}()
			}
			wg.Wait()
			if won != 1 {
				t.Fatalf("%d tailers acquired the lease, want exactly 1", won)
			}
		})
	}
}

// TestLeaseLostResponseS3: against MinIO, a renewal the bucket applied but
// whose response never arrived (the connection dropped) is sent once, and
// the next renewal, refused with 412 because the object moved on, finds
// its own token there and keeps the lease.
func TestLeaseLostResponseS3(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("lease")
	target, _ := url.Parse(srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var drop, dropped atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && drop.Load() > 0 {
			drop.Add(-1)
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, req) // applied by MinIO...
			dropped.Add(1)
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close() // ...but the answer is lost
			}
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	defer front.Close()
	ctx := context.Background()
	r, err := uploader.Open(ctx, "s3://lease/p?endpoint="+front.URL+"&path-style=true&region=us-east-1",
		uploader.Options{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	h, err := Acquire(ctx, r, Options{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	drop.Store(1)
	if err := h.Renew(ctx); err == nil || errors.Is(err, ErrLost) {
		t.Fatalf("renewal with its response dropped: %v, want a transient error", err)
	}
	if dropped.Load() != 1 {
		t.Fatalf("%d responses dropped, want 1 (the conditional write was resent)", dropped.Load())
	}
	if err := h.Renew(ctx); err != nil {
		t.Fatalf("renewal after a lost response: %v, want the lease kept", err)
	}
	if err := h.Renew(ctx); err != nil {
		t.Fatalf("plain renewal: %v", err)
	}
	if _, err := Acquire(ctx, r, Options{TTL: time.Minute}); !errors.Is(err, ErrHeld) {
		t.Fatalf("second tailer: %v, want ErrHeld", err)
	}
}
