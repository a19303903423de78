// Package changelog reads Stalwart's changelog subspace (column family
// `l`) out of the WriteBatches tailer ships, so that segments can carry
// change labels (which accounts and collections changed, from which change
// id to which) and `tailer changes` can list what happened, without
// decoding anything on the hot path but the `l` records.
//
// The layout is Stalwart 0.12+'s, read from its source (summed up in
// docs/design.md, "What tailer relies on in Stalwart's store"):
//
//	key   (13 bytes)  account id u32 BE | collection u8 | change id u64 BE
//	value             sync collections (0..8): seven unsigned LEB128 counts
//	                  (container inserts, container updates, container
//	                  property changes, container deletes, item inserts,
//	                  item updates, item deletes), then that many LEB128 ids
//	                  in the same order;
//	                  vanished collections (251..254): concatenated LEB128
//	                  item ids;
//	                  ShareNotification (9): a serialized object, opaque here;
//	                  empty: a truncation marker written by the purge, which
//	                  first removes older entries with a DeleteRange in `l`.
//
// Everything here is a pure function of its input. Decoding never panics
// and allocates at most in proportion to the input: a value claiming more
// ids than it has bytes is rejected before anything is allocated. Scan and
// Labeler count what they cannot decode instead of failing, because an odd
// value written by a newer Stalwart must never stop tailing.
package changelog
