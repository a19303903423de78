// Package uploader is tailer's side of a replica: the [Replica] contract
// every destination meets, its two backends and the encryption wrapper.
// Moving sealed objects there (the durable spool and the shipper that
// drains it) is package uploader/spool's job.
//
// One place per piece:
//
//   - replica.go: the [Replica] interface — atomic Put, read-after-write,
//     ranged reads, List and ListAfter, conditional writes (PutIf, the
//     lease's base) — the errors it returns, and key validation.
//     Package uploader/conformance is the test suite every
//     implementation passes.
//   - open.go: [Open] builds one from a replica URL (s3://BUCKET/PREFIX
//     or file:///ABS/DIR) and [Options].
//   - s3*.go: the S3 backend, its retrying HTTP client and its identity.
//   - file.go: the directory backend.
//   - encrypt*.go: [Encrypted], which seals every object client-side,
//     and its keys; [Unencrypted], which refuses to hand encrypted
//     objects to the format parsers.
//   - download.go: [Download], an atomic, durable copy of one object.
//
// # Retries
//
// A failed S3 request is retried by exactly one layer, the default HTTP
// client (go-retryablehttp; the AWS SDK's retryer is off):
//
//   - Each request — a GET, a PUT, one page of a LIST, a DELETE, each
//     part of a multipart upload and its create and complete calls — is
//     sent at most [S3RetryAttempts] (5) times: again after a connection
//     error, no response headers within Options.ResponseTimeout, a 429 or
//     a 5xx other than 501. Other answers (403, 404, 412...) are final.
//   - The waits between attempts are 0.2, 0.4, 0.8 and 1.6 s; a server's
//     Retry-After is honoured up to 3 s, so at most 12 s of waiting.
//   - An attempt that gets no answer fails after at most about 2.7 min
//     (30 s to connect, 10 s for TLS, ResponseTimeout of 2 min for the
//     response headers), so a request gives up within about 14 min, or
//     as soon as its context ends. Body transfers are not time-limited.
//   - A conditional write (PutIf: the lease) is sent once. Resending one
//     that was applied but whose response was lost would be refused as
//     if another writer had won; the lease re-reads the object instead.
//
// Above that, the backoff of the shipper in uploader/spool (0.5 s
// doubling to 30 s, jittered) is not a retry of the same request but the
// outage loop: the object
// stays in the spool and its whole upload is tried again later, forever,
// in commit order. A replaced Options.HTTPClient brings its own retries
// or none.
//
// [Encrypted] optionally wraps a Replica so every object is encrypted
// (AES-256-GCM, chunked so ranged reads still work) before it leaves the
// machine; the spool stays plaintext. The object format, and why whole
// objects are encrypted, is described at the top of encrypt.go.
//
// The package has no global state: logging goes to a caller's
// *slog.Logger.
package uploader
