// Package segment reads and writes tailer's two object formats: segments
// (.tseg, the raw RocksDB WriteBatches of a sequence range, with their
// capture times) and full exports (.texp, every key and value of every
// column family, consistent at one sequence number).
//
// These files are a long-lived contract: a tailer built next year must read
// a bucket written today, and every reader must reject damage with an error
// that names the object, what is wrong and which byte range, instead of
// restoring wrong data. This comment is the normative description of format
// version 1. A change that an old reader cannot safely ignore needs a new
// FormatVersion; old readers reject it before parsing anything else.
//
// # Object layout (format version 1)
//
// All integers are little-endian. "uvarint" is the unsigned LEB128 varint of
// encoding/binary (at most 10 bytes). Byte ranges in error messages are
// written "A..B" and are half-open: offset A up to, not including, B.
//
//	offset            size  field
//	0                 8     start magic: "TAILSEG\x00" (segment) or "TAILEXP\x00" (export)
//	8                 2     u16 format version (1)
//	10                4     u32 H, length of the header payload (at most 16 MiB)
//	14                H     header payload: JSON object, UTF-8 (see Header JSON)
//	14+H              B     body: zstd data (one frame), compressed records
//	14+H+B            T     trailer payload: JSON object, UTF-8 (see Trailer JSON)
//	size-24           8     u64 B, compressed body length
//	size-16           4     u32 T, trailer payload length (at most 256 MiB)
//	size-12           4     u32 CRC-32C (Castagnoli) of the trailer payload
//	size-8            8     end magic "TAILEND\x00"
//
// The header (bytes 0..14+H) is written first and uncompressed, so a listing
// tool can read it with one small ranged GET. The trailer and the fixed
// 24-byte footer are written last: a reader with random access and the
// object size finds everything from the footer, and an object whose upload
// stopped early has no footer and is rejected. The sizes must add up
// exactly: size == 14 + H + B + T + 24.
//
// A reader checks, in this order: the start magic (not a tailer object),
// the format version (a newer version is refused with "upgrade tailer"
// before anything else is parsed, so a future version may change every byte
// after offset 10), the end magic and the size equation (truncation), the
// CRC-32C of the trailer, the xxHash64 of the header bytes 0..14+H recorded
// in the trailer, then the JSON of both. Reading the body (Reader.NextBatch,
// Reader.NextEntry, Reader.Verify) checks the zstd frame checksum, every
// record's bounds, the record count, the uncompressed length, the xxHash64
// of the uncompressed body, the xxHash64 of the compressed body bytes and
// the kind-specific facts listed below. With these, every byte of an object
// is covered by a check: header bytes by header_xxhash64, body bytes by
// compressed_xxhash64 (zstd frame bits that do not change the decompressed
// content included), trailer bytes by the CRC-32C, footer bytes by the end
// magic, the CRC and the size equation.
//
// # Header JSON
//
//	{
//	  "kind": "segment" | "export",        // must agree with the start magic
//	  "generation": "20261203T133721.630Z-649cef", // layout.NewGenerationID
//	  "db_identity": "…",                  // the source DB's IDENTITY
//	  "first_seq": 1234, "last_seq": 5678, // export: both are its sequence
//	  "created": "2026-11-22T21:30:00.123456789Z", // RFC 3339, UTC
//	  "families": [{"id": 0, "name": "default", "merge_operator": "…"}, …],
//	  "compression": 1,                    // 1 = zstd, the only one in version 1
//	  "encryption": 0                      // 0 = none, the only one in version 1
//	}
//
// Family names are non-empty and unique, family ids unique; all strings are
// valid UTF-8 so that they round-trip exactly. Readers ignore unknown JSON
// members (additive, ignorable information does not need a new version).
//
// # Body
//
// The body is the concatenation of records, compressed as one zstd frame
// (writers use a window of 1 MiB for segments and 8 MiB for exports;
// readers accept at most MaxWindow, 8 MiB, declared or implied by a
// single-segment frame's content size), with the zstd content checksum.
// When the records compress better than MaxCompressionRatio (see Limits),
// writers append zstd skippable frames (magic 0x184D2A50, then a u32 LE
// length, then that many zero bytes) until uncompressed_len ≤
// MaxCompressionRatio × B + RatioAllowance; zstd decoders skip them, so
// readers that predate the padding read padded objects unchanged.
// The zstd compression level is the writer's choice and is not recorded:
// any level gives a frame as above, and readers decode them all alike.
//
// Segment record:
//
//	u64 seq            sequence number of the batch's first entry
//	i64 capture        unix milliseconds when tailer first saw the batch
//	uvarint n          length of the batch, at least 12
//	n bytes            the RocksDB WriteBatch representation, as is
//
// Records are in strictly increasing seq order and every seq lies within
// [first_seq, last_seq] of the header. The record's seq is authoritative;
// the WriteBatch keeps its own 12-byte header (u64 sequence, u32 count)
// untouched, so every record type RocksDB can write survives.
//
// Export record:
//
//	uvarint family     index into the header's "families" array
//	uvarint k, k bytes key
//	uvarint v, v bytes value
//
// Family indexes never decrease, and within a family keys are strictly
// increasing in bytewise order, so a restore can stream each family into an
// SST file writer.
//
// # Limits
//
// An object in a bucket is untrusted input: whoever can write the bucket
// can plant one, and every length in it is stated by the object itself. A
// reader therefore checks every length before it allocates anything for
// it, against a fixed limit and against what the object can really hold,
// and refuses the object as corrupt otherwise; writers refuse to write
// what readers would refuse.
//
//	limit                 value    bounds
//	header payload H      16 MiB   the header JSON (and B + T + 24 ≤ size - 14 - H)
//	trailer payload T     256 MiB  the trailer JSON (and within the object size)
//	MaxWindow             8 MiB    the zstd window, i.e. the decoder's history buffer
//	MaxCompressionRatio   128      uncompressed_len ≤ 128 × B + RatioAllowance
//	RatioAllowance        64 KiB   (so tiny objects need no padding)
//	MaxBatchLen           2 GiB    a segment record's WriteBatch (RocksDB: no limit but the u32 count)
//	MaxKeyLen             16 MiB   an export key (RocksDB: 4 GiB - 1; Stalwart: a few hundred bytes)
//	MaxValueLen           1 GiB    an export value (RocksDB: 4 GiB - 1; Stalwart: blobs, tens of MB)
//
// No record length may exceed its limit or what remains of uncompressed_len,
// and records are read in steps of 1 MiB, so a buffer grows only as the
// decompressed stream really delivers bytes. Together, reading an object
// of size S allocates at most about min(limit, 128 × S) per record plus
// the decoder's fixed buffers, whatever lengths the object states.
//
// # Trailer JSON
//
//	{
//	  "records": 42,
//	  "uncompressed_len": 123456,
//	  "body_xxhash64": "0123456789abcdef",   // xxHash64 (seed 0) of the uncompressed body
//	  "header_xxhash64": "0123456789abcdef", // xxHash64 of header bytes 0..14+H
//	  "compressed_xxhash64": "0123456789abcdef", // xxHash64 of the B body bytes as stored
//	  // segment only:
//	  "min_capture_unix_ms": 0, "max_capture_unix_ms": 0, // 0, 0 when no records
//	  "labels": [{"account": 1, "collection": 2, "min_change": 3, "max_change": 4}, …],
//	  // export only:
//	  "families": [{"name": "default", "keys": 10, "digest": "<64 hex digits>"}, …],
//	  "account_changes": {"<account id>": <newest change id>, …}
//	}
//
// Labels are sorted by (account, collection), unique, and min_change ≤
// max_change. An export has exactly one "families" entry per header family,
// in the same order and with the same name; keys is the number of records of
// that family and digest is its Digest.
//
// # Digest
//
// The per-family digest, used in export trailers and by restore and tests to
// compare a live DB with a restored one, is the lowercase hex SHA-256 of,
// for each key of the family in bytewise key order:
//
//	uvarint(len(key)) key uvarint(len(value)) value
//
// The digest of a family with no keys is the SHA-256 of nothing
// (e3b0c442…b855). See Digest.
//
// # Object names
//
// Segments are named "%016x-%016x.tseg" (first and last sequence) and
// exports "%016x.texp" (the export sequence), lowercase hex, so names sort in
// sequence order; see SegmentName, ExportName, ParseSegmentName and
// ParseExportName.
package segment
