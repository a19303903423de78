// Package spool moves sealed tailer objects from the local machine into a
// replica, surviving crashes and bucket outages on the way. It uses the
// [uploader.Replica] contract and knows nothing of any backend.
//
//   - [Spool] is a durable local queue: once [SpoolFile.Commit] returns,
//     the object survives a crash, a reboot or a bucket outage.
//     [OpenReplicaSpool] keeps one spool directory per replica, keyed by
//     the replica's Identity and claimed by its replica.json.
//   - [Shipper] drains the spool into the replica in commit order (blob
//     objects several at a time), retrying with capped exponential
//     backoff, and removes a spool file only after the replica confirmed
//     the upload.
//
// The package has no global state: metrics are registered on a caller's
// prometheus.Registerer and logging goes to a caller's *slog.Logger.
package spool
