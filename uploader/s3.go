package uploader

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// s3Replica stores objects in an S3-compatible bucket under a key prefix.
// Atomicity comes from S3 itself: a PutObject or a completed multipart
// upload becomes visible whole; an aborted one never does.
type s3Replica struct {
	client    *s3.Client
	uploader  *manager.Uploader
	loc       s3Location
	display   string
	identity  string
	threshold int64
}

// newS3Replica builds the SDK client from the standard AWS environment,
// then applies the URL query and Options on top (see Options).
func newS3Replica(ctx context.Context, loc s3Location, opts Options) (*s3Replica, error) {
	if opts.Endpoint != "" {
		ep, err := url.Parse(opts.Endpoint)
		if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
			return nil, fmt.Errorf("s3://%s: endpoint option must be http://HOST[:PORT] or https://HOST[:PORT]", loc.bucket)
		}
		loc.endpoint = opts.Endpoint
	}
	if opts.Region != "" {
		loc.region = opts.Region
	}
	if opts.PathStyle != nil {
		loc.pathStyle = opts.PathStyle
	}
	if (opts.AccessKeyID == "") != (opts.SecretAccessKey == "") {
		return nil, fmt.Errorf("s3://%s: set both AccessKeyID and SecretAccessKey, or neither", loc.bucket)
	}

	load := []func(*config.LoadOptions) error{
		// One retry layer only: the HTTP client's (see
		// newRetryingHTTPClient). The SDK's retryer on top would multiply
		// the attempts and resend conditional writes.
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if loc.region != "" {
		load = append(load, config.WithRegion(loc.region))
	}
	if opts.AccessKeyID != "" {
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("%s: load AWS configuration: %w", loc.displayURL(), err)
	}
	// The SDK builds its HTTP client (applying AWS_CA_BUNDLE and proxy
	// settings, which it can only do to its own client type); retries wrap
	// its transport.
	switch {
	case opts.HTTPClient != nil:
		cfg.HTTPClient = opts.HTTPClient
	default:
		var tr http.RoundTripper = http.DefaultTransport
		if b, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
			tr = b.GetTransport()
		}
		if t, ok := tr.(*http.Transport); ok {
			t = t.Clone()
			t.ResponseHeaderTimeout = cmp.Or(opts.ResponseTimeout, DefaultResponseTimeout)
			tr = t
		}
		cfg.HTTPClient = newRetryingHTTPClient(opts.Logger, tr, opts.retryWaits)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // what MinIO and most S3-compatible servers expect
	}
	// The SDK prints to stderr by default (e.g. "Skipped validation of
	// multipart checksum" on every multipart GET); route it to debug logs.
	cfg.Logger = sdkLogger{opts.Logger}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.DisableLogOutputChecksumValidationSkipped = true
		if loc.endpoint != "" {
			o.BaseEndpoint = aws.String(loc.endpoint)
		}
		if loc.pathStyle != nil {
			o.UsePathStyle = *loc.pathStyle
		} else {
			// Endpoint from the URL, Options or AWS_ENDPOINT_URL[_S3]: an
			// S3-compatible server, which rarely has wildcard DNS.
			o.UsePathStyle = aws.ToString(o.BaseEndpoint) != ""
		}
	})
	// Show where the objects really go, even when the endpoint came from
	// the environment.
	shown := loc
	shown.endpoint = aws.ToString(client.Options().BaseEndpoint)

	threshold := opts.MultipartThreshold
	if threshold <= 0 {
		threshold = DefaultMultipartThreshold
	}
	partSize := min(int64(DefaultMultipartThreshold), max(threshold, manager.MinUploadPartSize))
	up := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = partSize
		u.Concurrency = 4
	})
	return &s3Replica{client: client, uploader: up, loc: loc, display: shown.displayURL(),
		identity: loc.identity(shown.endpoint), threshold: threshold}, nil
}

// String returns s3://bucket/prefix with endpoint, region and path-style
// when set; never credentials.
func (r *s3Replica) String() string { return r.display }

// Identity implements Replica: s3://HOST[:PORT]/BUCKET/PREFIX/, the
// same whatever region, path-style or endpoint spelling the URL used.
func (r *s3Replica) Identity() string { return r.identity }

// Put implements Replica: one PutObject up to the multipart threshold, a
// multipart upload above it (or when size is unknown).
func (r *s3Replica) Put(ctx context.Context, key string, src io.Reader, size int64) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("%s: put: %w", r, err)
	}
	in := &s3.PutObjectInput{
		Bucket:      aws.String(r.loc.bucket),
		Key:         aws.String(r.loc.prefix + key),
		ContentType: aws.String("application/octet-stream"),
	}
	if size >= 0 && size <= r.threshold {
		body, err := singlePartBody(ctx, src, size)
		if err != nil {
			return fmt.Errorf("%s: put %s: read source: %w", r, key, err)
		}
		in.Body = body
		in.ContentLength = aws.Int64(size)
		if _, err := r.client.PutObject(ctx, in); err != nil {
			return r.wrapErr("put", key, err)
		}
		return nil
	}
	in.Body = multipartBody(src, size)
	if _, err := r.uploader.Upload(ctx, in); err != nil {
		r.abortMultipart(ctx, key, err)
		return r.wrapErr("put", key, err)
	}
	return nil
}

// readerAtSeeker is what files and bytes.Readers offer: random access lets
// the SDK hash and resend a body without buffering it.
type readerAtSeeker interface {
	io.ReaderAt
	io.Seeker
}

// singlePartBody returns a seekable body of exactly size bytes: a section
// of src if it supports random access, else a copy in memory (at most the
// multipart threshold).
func singlePartBody(ctx context.Context, src io.Reader, size int64) (io.ReadSeeker, error) {
	if ra, ok := src.(readerAtSeeker); ok {
		off, err := ra.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		return io.NewSectionReader(ra, off, size), nil
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(ctxReader{ctx, src}, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("source shorter than the declared %d bytes: %w", size, err)
	}
	return bytes.NewReader(buf), nil
}

// multipartBody bounds src to size bytes for the multipart uploader,
// keeping random access when src has it (the uploader then reads parts in
// parallel without copying) and failing the upload, before it completes,
// if a stream ends early.
func multipartBody(src io.Reader, size int64) io.Reader {
	if size < 0 {
		return src
	}
	if ra, ok := src.(readerAtSeeker); ok {
		if off, err := ra.Seek(0, io.SeekCurrent); err == nil {
			return io.NewSectionReader(ra, off, size)
		}
	}
	return &exactReader{r: src, n: size}
}

// abortMultipart makes sure a failed multipart upload leaves no billed
// parts behind. The uploader already tries, but with the caller's ctx,
// which is often the reason it failed.
func (r *s3Replica) abortMultipart(ctx context.Context, key string, err error) {
	var mu manager.MultiUploadFailure
	if !errors.As(err, &mu) || mu.UploadID() == "" {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, _ = r.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(r.loc.bucket),
		Key:      aws.String(r.loc.prefix + key),
		UploadId: aws.String(mu.UploadID()),
	})
}

// Get implements Replica.
func (r *s3Replica) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("%s: get: %w", r, err)
	}
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(r.loc.bucket),
		Key:    aws.String(r.loc.prefix + key),
	})
	if err != nil {
		return nil, r.wrapErr("get", key, err)
	}
	return out.Body, nil
}

// List implements Replica, following continuation tokens past S3's 1000
// keys per response.
func (r *s3Replica) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	return r.list(ctx, prefix, "")
}

// ListAfter implements Replica with S3's StartAfter.
func (r *s3Replica) ListAfter(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	return r.list(ctx, prefix, startAfter)
}

func (r *s3Replica) list(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	if !prefixCanMatch(prefix) {
		// e.g. "../": no valid key matches, and some servers reject it.
		return nil, nil
	}
	in := &s3.ListObjectsV2Input{
		Bucket: aws.String(r.loc.bucket),
		Prefix: aws.String(r.loc.prefix + prefix),
	}
	if startAfter != "" {
		in.StartAfter = aws.String(r.loc.prefix + startAfter)
	}
	p := s3.NewListObjectsV2Paginator(r.client, in)
	var out []ObjectInfo
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, r.wrapErr("list", fmt.Sprintf("%q", prefix), err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if len(k) < len(r.loc.prefix) {
				continue // cannot happen: S3 filtered by the longer prefix
			}
			out = append(out, ObjectInfo{
				Key:      k[len(r.loc.prefix):],
				Size:     aws.ToInt64(o.Size),
				Modified: aws.ToTime(o.LastModified),
			})
		}
	}
	// S3 returns UTF-8 binary order already; some compatible servers don't
	// (nor, then, honour StartAfter exactly).
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if startAfter != "" {
		i := sort.Search(len(out), func(i int) bool { return out[i].Key > startAfter })
		out = out[i:]
	}
	return out, nil
}

// Delete implements Replica. S3 already treats deleting an absent key as
// success; a NoSuchKey from a compatible server is mapped to success too.
func (r *s3Replica) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("%s: delete: %w", r, err)
	}
	_, err := r.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(r.loc.bucket),
		Key:    aws.String(r.loc.prefix + key),
	})
	if err != nil {
		err = r.wrapErr("delete", key, err)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}

// wrapErr names the replica, the operation and the object, and maps S3
// error codes to this package's sentinels.
func (r *s3Replica) wrapErr(op, key string, err error) error {
	switch apiErrorCode(err) {
	case "NoSuchBucket":
		return fmt.Errorf("%s: %s %s: bucket %q does not exist; create it first (e.g. `aws s3 mb s3://%s` or `mc mb ALIAS/%s`): %w",
			r, op, key, r.loc.bucket, r.loc.bucket, r.loc.bucket, ErrBucketNotFound)
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("%s: %s %s: %w", r, op, key, ErrNotFound)
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied":
		return fmt.Errorf("%s: %s %s: the bucket refused the credentials (%s): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile) and the bucket policy: %w", r, op, key, apiErrorCode(err), err)
	}
	if strings.Contains(err.Error(), "get credentials") {
		return fmt.Errorf("%s: %s %s: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE): %w", r, op, key, err)
	}
	return fmt.Errorf("%s: %s %s: %w", r, op, key, err)
}

// apiErrorCode returns the S3 error code inside err, or "".
func apiErrorCode(err error) string {
	var nsb *types.NoSuchBucket
	var nsk *types.NoSuchKey
	var api smithy.APIError
	switch {
	case errors.As(err, &nsb):
		return "NoSuchBucket"
	case errors.As(err, &nsk):
		return "NoSuchKey"
	case errors.As(err, &api):
		return api.ErrorCode()
	}
	return ""
}

// ReadRange implements Replica with one ranged GET.
func (r *s3Replica) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("%s: read: %w", r, err)
	}
	if err := checkRange(r, key, off, n); err != nil || n == 0 {
		return nil, err
	}
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(r.loc.bucket),
		Key:    aws.String(r.loc.prefix + key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
	})
	if err != nil {
		if apiErrorCode(err) == "InvalidRange" { // off at or past the end
			return nil, fmt.Errorf("%s: read %s bytes %d..%d: past the end: %w", r, key, off, off+n, io.ErrUnexpectedEOF)
		}
		return nil, r.wrapErr("read", key, err)
	}
	defer out.Body.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%s: read %s bytes %d..%d: %w", r, key, off, off+n, err)
	}
	return buf, nil
}

// GetVersioned implements Replica: the version is the ETag.
func (r *s3Replica) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	if err := ValidateKey(key); err != nil {
		return nil, "", fmt.Errorf("%s: get: %w", r, err)
	}
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.loc.bucket), Key: aws.String(r.loc.prefix + key)})
	if err != nil {
		return nil, "", r.wrapErr("get", key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, "", fmt.Errorf("%s: get %s: %w", r, key, err)
	}
	return buf.Bytes(), aws.ToString(out.ETag), nil
}

// PutIf implements Replica with If-None-Match: * (create) or If-Match
// (replace); the HTTP client sends it once (onceIfConditional).
func (r *s3Replica) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", fmt.Errorf("%s: put: %w", r, err)
	}
	in := &s3.PutObjectInput{Bucket: aws.String(r.loc.bucket), Key: aws.String(r.loc.prefix + key), Body: bytes.NewReader(data)}
	if ifVersion == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifVersion)
	}
	out, err := r.client.PutObject(ctx, in)
	if err != nil {
		switch apiErrorCode(err) {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return "", fmt.Errorf("%s: put %s: %w", r, key, ErrPreconditionFailed)
		case "NoSuchKey", "NotFound":
			if ifVersion != "" { // If-Match on an object that is gone: the writer lost
				return "", fmt.Errorf("%s: put %s: it is gone: %w", r, key, ErrPreconditionFailed)
			}
		}
		return "", r.wrapErr("put", key, err)
	}
	return aws.ToString(out.ETag), nil
}
