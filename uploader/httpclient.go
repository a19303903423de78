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

// newRetryingHTTPClient returns the HTTP client the S3 backend uses by
// default: go-retryablehttp retries connection errors, 429 and 5xx with
// exponential backoff (honouring Retry-After and ctx), so a blip in the
// network or a restarting MinIO does not fail a whole multipart upload.
// The waits are short because the Shipper adds its own, longer backoff
// around whole objects. transport does the actual round trips: the AWS
// SDK's own, so its timeouts, proxy settings and AWS_CA_BUNDLE still apply.
func newRetryingHTTPClient(log *slog.Logger, transport http.RoundTripper) *http.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient.Transport = transport
	c.RetryMax = 4
	c.RetryWaitMin = 200 * time.Millisecond
	c.RetryWaitMax = 3 * time.Second
	// Hand the last response to the SDK instead of a generic "giving up"
	// error, so it can parse S3's error code (NoSuchBucket, SlowDown...).
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	if log == nil {
		c.Logger = nil
	} else {
		c.Logger = debugLogger{log}
	}
	return c.StandardClient()
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
