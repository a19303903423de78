// Package dumpsource decides where a Stalwart dump is read from and hands
// that view to stalwartfmt.WriteDump: a live store frozen from outside
// (FromLive, `tailer export --format stalwart`), a past point of a replica
// restored into a temporary RocksDB (FromReplica, `tailer restore --format
// stalwart`), and the blobs a filesystem blob store keeps outside RocksDB
// (BlobDir, ReplicaBlobs).
//
// It exists so that stalwartfmt stays a format package: the writer knows
// Stalwart's files and a static store, while the orchestration that
// produces the store (snapshot, secondary, restore) and the replica's
// blobs (uploader, blobship) live here, one layer up.
package dumpsource
