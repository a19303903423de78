// Package report answers an operator's questions about a replica, for
// `tailer status`, `tailer changes` and `tailer list --accounts`: the
// newest restorable point with its capture time and the lease holder
// (ReadHead), what the local spool still holds (Spools), and the
// changelog entries and newest change id per account found in the
// segments (Changes, AccountChanges).
//
// It sits above internal/catalog, which only lists a replica into
// generations and reads framing and metadata in place: the lease and the
// changelog are command-level concerns and are read here.
package report
