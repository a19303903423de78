// Package integration holds tailer's end-to-end tests: a real RocksDB
// primary written by the Stalwart-like load generator while tailer tails
// it, real replicas (a directory and a MinIO server on 127.0.0.1), and
// restores compared family by family with the primary's state recorded at
// the same sequence number.
package integration
