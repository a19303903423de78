// Package stalwartfmt writes a Stalwart dump — the directory
// `stalwart --export` writes and `stalwart --import` reads — from a static
// RocksDB store, consistent at one sequence number. Where that store comes
// from (a live store frozen from outside, a point a tailer replica holds)
// is package dumpsource's business; this package does no I/O beyond
// reading the store and writing the files. That format is store-agnostic:
// it is how a Stalwart installation moves from RocksDB to PostgreSQL,
// FoundationDB or another RocksDB, which a file-level backup cannot do.
//
// # Where the facts come from
//
// Everything below was read from Stalwart's source at tag v0.16.18
// (commit d08305df2e865ccf8b0676fd63ebd37d25aef787; backup.rs is identical
// from v0.16.0 to v0.16.18). Stalwart is AGPL: this package re-implements
// the format from this description and copies none of its code. Files and
// lines:
//
//	B  crates/common/src/manager/backup.rs     (the exporter)
//	R  crates/common/src/manager/restore.rs    (the importer)
//	S  crates/store/src/lib.rs                 (subspace letters, 103-130)
//	K  crates/store/src/backend/rocksdb/read.rs (iterate, 55-106)
//	D  crates/store/src/dispatch/blob.rs       (blob markers, 11-14, 65-138)
//	L  crates/utils/src/codec/leb128.rs        (LEB128 writer, 92-105)
//	V  crates/common/src/lib.rs:106            (DATABASE_SCHEMA_VERSION = 6)
//	Z  crates/store/src/write/serialize.rs     (u32 big endian, 495-499, 558-564)
//	M  crates/common/src/manager/boot.rs       (command line, 40-121, 244-265)
//
// # The directory
//
// One file per exported subspace, named "subspace_" followed by the
// subspace letter (B 104, 163-166), e.g. subspace_t. A file is written for
// every exported subspace, even an empty one (B 239-256). Stalwart's
// importer, given a directory, imports every regular file in it, each in
// its own task (R 25-44): the directory must hold nothing else, so tailer
// writes no manifest or summary there and refuses a non-empty --out.
//
// # One file
//
// The whole file is a single LZ4 frame (the standard LZ4 frame format;
// Stalwart writes it with lz4_flex's FrameEncoder, B 249-251, and reads it
// with FrameDecoder, R 191-194). lz4_flex's default frame uses independent
// 64 KiB blocks and no checksums; its decoder (lz4_flex src/frame/header.rs
// and decompress.rs, read at 0.11.5; Stalwart 0.16.18 locks 0.14.0) accepts
// block sizes 64 KiB to 4 MiB, linked or independent blocks, block and
// content checksums (verified), and refuses a dictionary id. tailer writes
// independent 64 KiB blocks with a content checksum and no dictionary.
//
// Decompressed, the file is:
//
//	byte 0      123 (MAGIC_MARKER, B 22; checked at R 196-201)
//	byte 1      the subspace letter, ASCII (B 252; the importer takes the
//	            subspace from here, not from the file name: R 203-205)
//	bytes 2..5  the schema version, u32 little endian (B 254; R 207-210)
//	then        records until the end of the frame
//
// A record is
//
//	LEB128(len(key))   key   LEB128(len(value))   value
//
// (B 257-269) with unsigned LEB128 (7 bits per byte, low bits first, high
// bit set on every byte but the last; L 92-105). An empty value is written
// as its length 0 and no bytes. The importer reads a length with at most
// five bytes into a u32 (R 233-256), so no length may reach 2^32; the end
// of the frame at a record boundary ends the file (R 238-241).
//
// The schema version is read from the store itself: family p, key 0x00, a
// u32 big endian (B 53-63 with Z 558-564; Stalwart writes it with Z 495-499).
// Stalwart's exporter fails when it is missing. The importer refuses a file
// whose version differs from its own DATABASE_SCHEMA_VERSION (R 212-216),
// which is 6 in 0.16 (V) — so the files import only into a Stalwart of the
// same schema. tailer knows only schema 6 and refuses any other version by
// number (ErrUnknownSchema): the subspace list below changes between
// schemas (0.15, schema 5, exported a different set).
//
// # Which keys
//
// Each subspace is iterated in key order from key [0x00] to 32 bytes of
// 0xFF (B 171-181, 113-123). The RocksDB backend turns that into a lower
// bound [0x00] (inclusive) and an upper bound of the end key plus one 0x00
// byte (exclusive; K 64-73). So the empty key, and keys longer than 32
// bytes that start with 32 0xFF bytes, are not exported (InRange).
//
// # Which subspaces (schema 6)
//
// With no EXPORT_TYPES variable, every family of the exporter is written
// (B 65-78, 284-286). Family::subspaces (B 307-330) with the letters of S:
//
//	Data        a (ACL), i (indexes), u (quota), n (counters), p (properties)
//	Blob        t (blobs), k (blob links)
//	Registry    s (registry), b (registry index), g (registry pk), d (directory)
//	Changelog   l
//	Queue       e (queue messages), q (queue events)
//	Report      h (reports out), r (reports in)
//	Telemetry   o (spans), x (metrics)
//	Tasks       f (task queue)
//
// Not exported: m (in-memory values), y (in-memory counters), z (search
// index), j (deleted items), w (spam samples), and the legacy bitmaps v and
// c (S 110-111, 124-130). Families on disk outside both lists are reported
// and left out.
//
// Key-only subspaces: i and b are iterated without values (B 182-184), so
// every record has an empty value. The importer rebuilds i from the key
// (account u32 BE | collection u8 | field u8 | term | document u32 BE,
// R 125-156) and writes b with an empty value (R 157-174; before 0.16.4,
// commit 7e21ff6f, it parsed b like i, so import b with 0.16.4 or later).
//
// Counters: on RocksDB, n and u are exported like any subspace, with their
// stored values (B 169-194): the merged i64, 8 bytes little endian. The
// importer adds each value (which must be exactly 8 bytes) as a counter
// (R 103-124).
//
// # Blobs (subspace t)
//
// The blob file is not a copy of family t (B 86-90, 100-158). The exporter
// iterates family k without values over the same range, takes the first 32
// bytes of every link key as a blob hash (a shorter key fails the export,
// B 126-131), drops consecutive repeats (B 133-136; k is sorted by hash, so
// each hash once, in hash order), and for each hash fetches the blob from
// the blob store; a hash with no blob is skipped (B 144-154). Blobs with no
// link are not exported. The record is key = the 32-byte hash, value = the
// blob as BlobStore::get_blob returns it, decoded from the stored value by
// its last byte (D 65-89):
//
//	0x00         raw: the payload is the value without its last byte
//	0xA1         LZ4: u32 little-endian uncompressed length, then one LZ4
//	             block (lz4_flex decompress_size_prepended), then the marker
//	empty value  an empty blob
//	other        returned as stored, marker included (an event is logged)
//
// The importer stores each blob through its own blob store with LZ4
// compression (R 94-102, D 107-138), wherever that blob store is. When
// Stalwart's blob store is not the RocksDB store (S3, filesystem), family t
// holds no blobs and every linked hash is "missing": tailer counts and
// reports them (Summary.MissingBlobs) and such blobs must be carried over
// separately.
//
// # Consistency
//
// Stalwart's exporter opens the store as primary (so Stalwart must be
// stopped) and reads each subspace with its own iterator, concurrently,
// with no snapshot across them (B 80-97). tailer reads one frozen, static
// view: every file is the store at one sequence number (Summary.Seq).
//
// # Importing
//
// `stalwart --config CONFIG --import DIR` (or -c / -i; M 48-50, 93-101;
// --config is required, M 114-121). The import (M 255-265) writes into the
// data and blob stores CONFIG names. From 0.16.15 (commit c8f46f32) it
// refuses a file whose subspace already holds data in the target (R 81-90):
// import into a new, empty store before Stalwart's first start there.
package stalwartfmt
