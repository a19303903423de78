// Package uploader moves sealed tailer objects (segments, exports,
// generation.json) from the local machine to a replica: an S3-compatible
// bucket or a local directory.
//
// Three pieces, each with one job:
//
//   - [Replica] is a bucket-like destination with atomic, immutable
//     objects. [Open] builds one from a replica URL (s3://BUCKET/PREFIX or
//     file:///ABS/DIR); both backends pass the same conformance suite.
//   - [Spool] is a durable local queue: once [SpoolFile.Commit] returns,
//     the object survives a crash, a reboot or a bucket outage.
//   - [Shipper] drains the spool into the replica, oldest first, retrying
//     with capped exponential backoff, and removes a spool file only after
//     the replica confirmed the upload.
//
// [Encrypted] optionally wraps a Replica so every object is encrypted
// (AES-256-GCM, chunked so ranged reads still work) before it leaves the
// machine; the spool stays plaintext. The object format, and why whole
// objects are encrypted, is described at the top of encrypt.go.
//
// The package has no global state: metrics are registered on a caller's
// prometheus.Registerer and logging goes to a caller's *slog.Logger.
package uploader
