package uploader

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// urlHelp is appended to every URL parse error, so an operator sees what a
// valid value looks like instead of guessing.
const urlHelp = "want s3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT&region=REGION&path-style=true] or file:///ABSOLUTE/DIR"

// s3Location is a parsed s3:// replica URL: where the objects live and the
// per-URL overrides of the SDK configuration.
type s3Location struct {
	bucket    string
	prefix    string // "" or ends in "/"
	endpoint  string
	region    string
	pathStyle *bool
}

// Open returns the Replica named by rawURL:
//
//	file:///ABS/DIR                 a local directory (tests, NFS, demo)
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path-style=BOOL]
//
// For s3, opts override the URL query, which overrides the SDK's standard
// environment; see Options. Open does not contact the bucket, so a tailer
// can start (and spool) during an outage; a missing bucket is reported by
// the first operation, wrapping ErrBucketNotFound.
func Open(ctx context.Context, rawURL string, opts Options) (Replica, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the input, which may hold credentials: keep
		// only the reason.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalid replica URL: %v; %s", err, urlHelp)
	}
	switch u.Scheme {
	case "file":
		dir, err := parseFileURL(u)
		if err != nil {
			return nil, err
		}
		return newFileReplica(dir), nil
	case "s3":
		loc, err := parseS3URL(u)
		if err != nil {
			return nil, err
		}
		return newS3Replica(ctx, loc, opts)
	case "":
		return nil, fmt.Errorf("invalid replica URL %q: no scheme; %s", u.Redacted(), urlHelp)
	default:
		return nil, fmt.Errorf("invalid replica URL %q: unsupported scheme %q; %s", u.Redacted(), u.Scheme, urlHelp)
	}
}

// parseFileURL accepts only absolute directories: a relative one would
// silently depend on the working directory of whoever runs restore.
func parseFileURL(u *url.URL) (string, error) {
	if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") {
		return "", fmt.Errorf("invalid replica URL %q: file URLs need an absolute path and three slashes, e.g. file:///var/backups/tailer; %s", u.Redacted(), urlHelp)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("invalid replica URL %q: file URLs take no user, query or fragment; %s", u.Redacted(), urlHelp)
	}
	if !path.IsAbs(u.Path) {
		return "", fmt.Errorf("invalid replica URL %q: path is not absolute; %s", u.Redacted(), urlHelp)
	}
	return path.Clean(u.Path), nil
}

// parseS3URL splits an s3 URL into bucket, prefix and query overrides. It
// rejects credentials in the URL (they would end up in logs and shell
// history) and unknown query keys (a typo must not be ignored silently).
func parseS3URL(u *url.URL) (s3Location, error) {
	var loc s3Location
	if u.User != nil {
		return loc, fmt.Errorf("invalid replica URL s3://%s/...: credentials do not belong in the URL; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile", u.Host)
	}
	if u.Opaque != "" || u.Host == "" {
		return loc, fmt.Errorf("invalid replica URL %q: no bucket; %s", u.Redacted(), urlHelp)
	}
	if u.Fragment != "" {
		return loc, fmt.Errorf("invalid replica URL %q: unexpected fragment; %s", u.Redacted(), urlHelp)
	}
	loc.bucket = u.Host
	if p := strings.Trim(u.Path, "/"); p != "" {
		if err := ValidateKey(p); err != nil {
			return loc, fmt.Errorf("invalid replica URL s3://%s/%s: bad prefix: %v", u.Host, p, err)
		}
		loc.prefix = p + "/"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return loc, fmt.Errorf("invalid replica URL s3://%s/%s: bad query: %v; %s", loc.bucket, loc.prefix, err, urlHelp)
	}
	for k, v := range q {
		if len(v) != 1 {
			return loc, fmt.Errorf("invalid replica URL s3://%s/%s: query key %q given %d times", loc.bucket, loc.prefix, k, len(v))
		}
		switch k {
		case "endpoint":
			ep, err := url.Parse(v[0])
			if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
				return loc, fmt.Errorf("invalid replica URL s3://%s/%s: endpoint must be http://HOST[:PORT] or https://HOST[:PORT]", loc.bucket, loc.prefix)
			}
			loc.endpoint = v[0]
		case "region":
			loc.region = v[0]
		case "path-style":
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return loc, fmt.Errorf("invalid replica URL s3://%s/%s: path-style=%q is not a boolean", loc.bucket, loc.prefix, v[0])
			}
			loc.pathStyle = &b
		default:
			return loc, fmt.Errorf("invalid replica URL s3://%s/%s: unknown query key %q (known: endpoint, region, path-style)", loc.bucket, loc.prefix, k)
		}
	}
	return loc, nil
}

// displayURL renders an s3 location for String(): bucket, prefix and the
// explicit overrides only, with any userinfo stripped from the endpoint.
func (loc s3Location) displayURL() string {
	s := "s3://" + loc.bucket
	if loc.prefix != "" {
		s += "/" + strings.TrimSuffix(loc.prefix, "/")
	}
	// Built by hand rather than url.Values.Encode, which would percent-encode
	// the endpoint into something unreadable in logs.
	var q []string
	if loc.endpoint != "" {
		ep := loc.endpoint
		if u, err := url.Parse(ep); err == nil {
			u.User = nil
			ep = u.String()
		}
		q = append(q, "endpoint="+ep)
	}
	if loc.region != "" {
		q = append(q, "region="+url.QueryEscape(loc.region))
	}
	if loc.pathStyle != nil {
		q = append(q, "path-style="+strconv.FormatBool(*loc.pathStyle))
	}
	if len(q) > 0 {
		s += "?" + strings.Join(q, "&")
	}
	return s
}

// DefaultMultipartThreshold is the object size above which the S3 backend
// switches from one PutObject to a multipart upload; it is also the part
// size. 16 MiB keeps memory bounded and retries of one part cheap.
const DefaultMultipartThreshold = 16 << 20

// Options tune Open. Every field is optional; non-zero fields override the
// replica URL's query, which overrides the AWS SDK's standard environment
// (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE, shared config files). The file
// backend ignores everything but Logger.
type Options struct {
	// Endpoint is the S3 endpoint URL, e.g. http://127.0.0.1:9000, for
	// S3-compatible servers. Empty means AWS or the environment's endpoint.
	Endpoint string
	// Region defaults to the environment's, else us-east-1.
	Region string
	// PathStyle selects bucket-in-path addressing. nil means true when an
	// endpoint is set (MinIO, Ceph, ...) and virtual-hosted style for AWS.
	PathStyle *bool
	// AccessKeyID and SecretAccessKey, when both set, replace the SDK's
	// credential chain (tests, flags). They are never printed.
	AccessKeyID, SecretAccessKey string
	// HTTPClient replaces the default retrying client (tests that inject
	// faults, benchmarks that count requests). The default is
	// go-retryablehttp's, which retries connection errors, 429 and 5xx
	// with backoff and honours ctx; it is the only retry layer, so a
	// replacement sends each request once unless it retries itself.
	HTTPClient *http.Client
	// Logger receives debug logs of HTTP retries. nil discards them.
	Logger *slog.Logger
	// ResponseTimeout bounds the wait for a response's headers once a
	// request has been sent (default DefaultResponseTimeout). A server that
	// accepts a connection and never answers (a stalled proxy, a hung
	// MinIO, a half-open connection after a network partition) then fails
	// that attempt, which is retried, instead of holding an upload, and the
	// spool behind it, forever. It does not limit how long a body takes.
	ResponseTimeout time.Duration
	// MultipartThreshold: objects larger than this go through a multipart
	// upload with parts of min(16 MiB, max(threshold, 5 MiB)). Default
	// DefaultMultipartThreshold.
	MultipartThreshold int64

	// retryWaits shortens the default client's waits between attempts
	// (min, max) in tests.
	retryWaits [2]time.Duration
}

// DefaultResponseTimeout is Options.ResponseTimeout's default: long
// enough for S3 to answer CompleteMultipartUpload of a large export,
// short enough that a stalled connection costs minutes, not the run.
const DefaultResponseTimeout = 2 * time.Minute
