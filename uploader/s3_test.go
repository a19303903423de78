package uploader

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/tailer-backup/tailer/internal/miniotest"
)

// testThreshold is low enough that the 40 MiB conformance objects go
// through several multipart parts.
const testThreshold = 8 << 20

func openS3(t *testing.T, srv *miniotest.Server, rawURL string, opts Options) Replica {
	t.Helper()
	opts.AccessKeyID, opts.SecretAccessKey = srv.AccessKey, srv.SecretKey
	r, err := Open(context.Background(), rawURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestS3Multipart checks the threshold really selects the upload method
// (a multipart object's ETag ends in -<parts>) and that an interrupted
// multipart upload leaves no parts behind.
func TestS3Multipart(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t)
	srv.CreateBucket("mpu")
	ctx := ctxT(t)
	etag := func(key string) string {
		t.Helper()
		out, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("mpu"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("head %s: %v", key, err)
		}
		return strings.Trim(aws.ToString(out.ETag), `"`)
	}
	low := openS3(t, srv, srv.URL("mpu", "low"), Options{MultipartThreshold: testThreshold})
	def := openS3(t, srv, srv.URL("mpu", "def"), Options{})
	for _, c := range []struct {
		r     Replica
		key   string
		size  int
		parts string // ETag suffix, "" for a single PutObject
	}{
		{low, "low/at-threshold", testThreshold, ""},
		{low, "low/above", testThreshold + 1, "-2"},
		{low, "low/big", 3 * testThreshold, "-3"},
		{def, "def/15mib", 15 << 20, ""},
		{def, "def/20mib", 20 << 20, "-2"},
	} {
		data := randomBytes(c.size, uint64(c.size))
		key := strings.SplitN(c.key, "/", 2)[1]
		if err := c.r.Put(ctx, key, bytes.NewReader(data), int64(c.size)); err != nil {
			t.Fatal(err)
		}
		tag := etag(c.key)
		if multi := strings.Contains(tag, "-"); multi != (c.parts != "") || (multi && !strings.HasSuffix(tag, c.parts)) {
			t.Errorf("%s (%d bytes): ETag %s, want parts suffix %q", c.key, c.size, tag, c.parts)
		}
		if !bytes.Equal(get(t, c.r, key), data) {
			t.Errorf("%s: content differs", c.key)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	src := &cancellingReader{r: bytes.NewReader(randomBytes(3*testThreshold, 9)), after: 3 * testThreshold / 2, cancel: cancel}
	if err := low.Put(cctx, "cancelled", onlyReader{src}, 3*testThreshold); err == nil {
		t.Fatal("cancelled multipart upload succeeded")
	}
	ups, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu"), Prefix: aws.String("low/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("%d incomplete multipart uploads left behind", len(ups.Uploads))
	}
}

// TestS3MissingBucket: the error must name the bucket and say to create it,
// and must not look like an absent object (restore would see "empty").
func TestS3MissingBucket(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t)
	r := openS3(t, srv, srv.URL("no-such-bucket", "p"), Options{})
	ctx := ctxT(t)
	_, getErr := r.Get(ctx, "k")
	_, listErr := r.List(ctx, "")
	for op, err := range map[string]error{
		"put":    r.Put(ctx, "k", strings.NewReader("x"), 1),
		"bigput": r.Put(ctx, "k", onlyReader{bytes.NewReader(make([]byte, 20<<20))}, 20<<20),
		"get":    getErr,
		"list":   listErr,
	} {
		if !errors.Is(err, ErrBucketNotFound) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrBucketNotFound", op, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `"no-such-bucket"`) || !strings.Contains(msg, "create it") {
			t.Errorf("%s: %q does not name the bucket and say to create it", op, msg)
		}
	}
}

// TestS3StringHasNoSecrets: String() is what logs show.
func TestS3StringHasNoSecrets(t *testing.T) {
	t.Parallel()
	opts := Options{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "hunter2-secret", Endpoint: "http://user:pw@127.0.0.1:1", MultipartThreshold: 1}
	r, err := Open(context.Background(), "s3://bkt/a/b?region=eu-west-1", opts)
	if err != nil {
		t.Fatal(err)
	}
	got := r.String()
	if want := "s3://bkt/a/b?endpoint=http://127.0.0.1:1&region=eu-west-1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, secret := range []string{"AKIAEXAMPLE", "hunter2", "pw"} {
		if strings.Contains(got, secret) {
			t.Errorf("String() = %q contains %q", got, secret)
		}
	}
	// A failed operation's error names the replica the same way.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Put(ctx, "k", strings.NewReader("x"), 1); err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "s3://bkt/a/b") {
		t.Errorf("put error = %v", err)
	}
}

// TestS3FromEnvironment: with only the standard AWS environment (as in a
// container), a bare s3://bucket/prefix works: the endpoint comes from
// AWS_ENDPOINT_URL_S3, path-style follows from it, and the region defaults
// to us-east-1.
func TestS3FromEnvironment(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("envbkt")
	srv.SetEnv(t)
	t.Setenv("AWS_REGION", "")
	os.Unsetenv("AWS_REGION")
	t.Setenv("AWS_DEFAULT_REGION", "")
	os.Unsetenv("AWS_DEFAULT_REGION")
	r, err := Open(context.Background(), "s3://envbkt/from-env", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "s3://envbkt/from-env?endpoint=" + srv.Endpoint; r.String() != want {
		t.Errorf("String() = %q, want %q", r.String(), want)
	}
	put(t, r, "k", []byte("v"))
	if got := get(t, r, "k"); string(got) != "v" {
		t.Fatalf("get = %q", got)
	}
	if _, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("envbkt"), Key: aws.String("from-env/k")}); err != nil {
		t.Fatalf("object not under the prefix: %v", err)
	}
}

// TestS3RetriesTransientErrors puts a proxy in front of MinIO that answers
// every other request with 503: the retrying HTTP client must resend
// bodies (single and multipart) so that every operation still succeeds.
func TestS3RetriesTransientErrors(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t)
	srv.CreateBucket("flaky")
	target, _ := url.Parse(srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var n, injected atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if n.Add(1)%2 == 1 {
			injected.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	defer flaky.Close()
	u := "s3://flaky/p?endpoint=" + flaky.URL + "&region=us-east-1"
	r := openS3(t, srv, u, Options{MultipartThreshold: testThreshold})
	small := randomBytes(1000, 1)
	big := randomBytes(2*testThreshold+1, 2)
	put(t, r, "small", small)
	put(t, r, "big", big)
	if !bytes.Equal(get(t, r, "small"), small) || !bytes.Equal(get(t, r, "big"), big) {
		t.Fatal("content differs after retried uploads")
	}
	wantKeys(t, r, "", "big", "small")
	if err := r.Delete(ctxT(t), "small"); err != nil {
		t.Fatal(err)
	}
	if injected.Load() < 5 {
		t.Fatalf("only %d failures injected", injected.Load())
	}
}
