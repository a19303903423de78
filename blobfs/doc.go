// Package blobfs reads and writes the layout of Stalwart's filesystem blob
// store ("fs" blob store), where the mail itself lives when Stalwart is
// configured to keep blobs outside RocksDB:
//
//	<root>/<h0>/<h1>/…/<name>
//
// Each of the first min(depth, 5) bytes of the blob key (the 32-byte
// BLAKE3 hash of the payload) names one directory level, in lowercase hex
// without zero padding ("5", not "05"); depth defaults to 2. The file name
// is the whole key in base32 without padding, in Stalwart's alphabet
// "abcdefghijklmnopqrstuvwxyz792013" (RFC 4648 base32, lower case, with the
// digits 2 3 4 5 6 7 replaced by 7 9 2 0 1 3): 52 characters for a hash.
//
// A file holds the payload followed by one marker byte: 0x00 raw, 0xA1 an
// LZ4 block preceded by the payload length as u32 little endian, the same
// encoding as values in family t. The hash is over the payload (before
// compression), so a complete file is one whose decoded payload hashes to
// its name.
//
// Stalwart writes a file with a plain create and write (no temporary name,
// no rename, no fsync) and leaves a file whose length already matches
// alone, so a reader can see a file that is still being written: a file
// that does not (yet) hash to its name is reported as not ready, never as
// corrupt, and the caller looks again later. Files are content addressed
// and created once; only Stalwart's blob purge removes them.
//
// Stalwart also keeps a few non-mail objects there under keys that are not
// content hashes (the spam classifier's model and training data, under
// ASCII names; downloaded web application bundles, under a hash of their
// URL rather than of their content). Scan reports those as entries whose
// Key is not a hash, or whose content never matches its name.
package blobfs
