package uploader

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/smithy-go/logging"
	"github.com/hashicorp/go-retryablehttp"
)

// S3RetryAttempts is how many times the default HTTP client of the S3
// backend sends one request before giving up: the first attempt and up to
// four retries. See the package documentation for the whole budget.
const S3RetryAttempts = 5

// Default waits between attempts: 200ms, 400ms, 800ms, 1.6s (doubling,
// capped at 3s; a server's Retry-After is honoured up to the cap).
const (
	retryWaitMin = 200 * time.Millisecond
	retryWaitMax = 3 * time.Second
)

// newRetryingHTTPClient returns the HTTP client the S3 backend uses by
// default, the only layer that retries a request (the SDK's retryer is
// off): go-retryablehttp resends on connection errors, 429 and 5xx
// (except 501) with exponential backoff, honouring ctx, so a blip in the
// network or a restarting MinIO does not fail a whole multipart upload.
// The waits are short because the Shipper keeps a failed object in the
// spool and tries it again later, with its own, longer backoff.
//
// Conditional writes (a PUT or POST with If-Match or If-None-Match: the
// lease) are sent once: resending one that was applied but whose response
// was lost would be answered 412, which reads as "someone else wrote".
// The lease re-reads the object instead (see package lease).
//
// transport does the actual round trips: the AWS SDK's own, so its
// timeouts, proxy settings and AWS_CA_BUNDLE still apply. waits overrides
// retryWaitMin and retryWaitMax when set (tests).
func newRetryingHTTPClient(log *slog.Logger, transport http.RoundTripper, waits [2]time.Duration) *http.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient.Transport = transport
	c.RetryMax = S3RetryAttempts - 1
	c.RetryWaitMin, c.RetryWaitMax = retryWaitMin, retryWaitMax
	if waits[0] > 0 {
		c.RetryWaitMin, c.RetryWaitMax = waits[0], waits[1]
	}
	// Retry-After may ask for minutes; longer outages are the Shipper's.
	c.Backoff = func(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
		return min(retryablehttp.DefaultBackoff(lo, hi, attempt, resp), hi)
	}
	// Hand the last response to the SDK instead of a generic "giving up"
	// error, so it can parse S3's error code (NoSuchBucket, SlowDown...).
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	if log == nil {
		c.Logger = nil
	} else {
		c.Logger = debugLogger{log}
	}
	return &http.Client{Transport: onceIfConditional{once: transport, retrying: &retryablehttp.RoundTripper{Client: c}}}
}

// onceIfConditional sends conditional writes through once, everything
// else through retrying.
type onceIfConditional struct {
	once, retrying http.RoundTripper
}

func (o onceIfConditional) RoundTrip(req *http.Request) (*http.Response, error) {
	write := req.Method == http.MethodPut || req.Method == http.MethodPost
	if write && (req.Header.Get("If-Match") != "" || req.Header.Get("If-None-Match") != "") {
		return o.once.RoundTrip(req)
	}
	return o.retrying.RoundTrip(req)
}

// debugLogger adapts slog to retryablehttp.LeveledLogger at debug level:
// a retried request is routine; whatever finally fails is reported by the
// caller with context.
type debugLogger struct{ l *slog.Logger }

func (d debugLogger) log(msg string, kv []any) {
	d.l.Log(context.Background(), slog.LevelDebug, "s3 http: "+msg, kv...)
}
func (d debugLogger) Error(msg string, kv ...any) { d.log(msg, kv) }
func (d debugLogger) Info(msg string, kv ...any)  { d.log(msg, kv) }
func (d debugLogger) Debug(msg string, kv ...any) { d.log(msg, kv) }
func (d debugLogger) Warn(msg string, kv ...any)  { d.log(msg, kv) }

// sdkLogger adapts slog to the AWS SDK's logger, at debug level: the SDK's
// messages are diagnostics, and its default logger writes to stderr.
type sdkLogger struct{ l *slog.Logger }

func (s sdkLogger) Logf(class logging.Classification, format string, v ...any) {
	if s.l == nil {
		return
	}
	s.l.Log(context.Background(), slog.LevelDebug, "aws sdk: "+fmt.Sprintf(format, v...), "class", string(class))
}
