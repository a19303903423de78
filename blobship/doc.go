// Package blobship backs up and restores a filesystem blob store
// (Stalwart's "fs" blob store, blobfs) through a replica: each complete,
// verified blob file is uploaded once as blobs/<name> (layout.BlobKey, in
// the object format of format.go), and a restore writes the blobs a point
// in time references (bloblink) back in Stalwart's layout, checking each
// against its hash.
//
// Blobs are content addressed and immutable, so there is no per-generation
// copy: a blob uploaded once serves every point that references it. Which
// blobs a point needs is read from the restored store's family k, never
// from the bucket.
package blobship
