// Package stalwart holds what tailer must know about the RocksDB store of
// the Stalwart mail server to open it safely: its column families (one per
// subspace letter), its "merge" operator (without which merge records can
// neither be read nor replayed) and the options that matter when tailer
// opens a store as secondary, read-only or as a fresh restore target.
//
// The facts were read from Stalwart's source (0.11 to 0.16) and are summed
// up in docs/design.md ("What tailer relies on in Stalwart's store").
// Everything here is shared by secondary/, snapshot/, restore/ and the
// load generator so that all four agree.
package stalwart
