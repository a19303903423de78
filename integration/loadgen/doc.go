// Package loadgen writes a RocksDB store that looks like the one Stalwart
// 0.16 writes, while tailer tails it: the same column families (one per
// subspace letter, opened through internal/store so the merge operator,
// blob files and SST format_version 6 are Stalwart's), small write buffers
// so that flushes, WAL rotation and WAL deletion happen often, and
// transactions shaped like Stalwart's — one WriteBatch each, written with
// default WriteOptions (WAL on, not synced).
//
// The transaction mix (the key and value layouts follow Stalwart's source,
// as docs/design.md, "What tailer relies on in Stalwart's store", sums it
// up):
//
//   - delivery (~55%): a blob in t (large ones go to blob files) with its
//     commit key in k, or with Config.BlobDir a file in a Stalwart
//     filesystem blob store (see Config.BlobDir); a document link per
//     recipient in k, properties in p, index entries in i and b, counter and
//     quota merges in n, sometimes rate and queue counters in y and u, an
//     indexing task in f, and the changelog in l.
//   - flag change (~20%): keyword puts in p and b (deletes when a keyword
//     is cleared), a changelog entry with item updates.
//   - expunge (~12%): deletes of every key of the message, sometimes a blob
//     purge (t value or file, and commit key), a negative quota merge, a
//     changelog entry with item deletes (and sometimes a vanished-Email
//     entry). With Config.BlobPurgeDelay the purge is instead scheduled:
//     after any transaction, every blob dead for the delay goes.
//   - changelog purge (~4%): DeleteRange in l then an empty-valued
//     truncation marker at the first kept key.
//   - counter cleanup (~3%): deletes of zero counters in n, u and y.
//   - churn (~6%): in-memory values (m, with SingleDelete), queue (q and
//     its u quota), tasks (f), deleted items (j), rate counter resets (y).
//
// Every transaction that changes an account's data bumps that account's
// change id in n and writes one l entry per collection touched with it, in
// the same batch, as Stalwart does.
//
// Content is a pure function of the seed and of the transaction number
// (each transaction draws from its own generator seeded with both, and the
// in-memory model it reads evolves deterministically), so two generators
// with the same Config write byte-identical stores: tests compare a
// restored store with the primary through Marks — per-family digests taken
// from one RocksDB snapshot — recorded while writing. (With a purge delay
// the purge follows the clock, so which blobs are gone at a point is not.)
package loadgen
