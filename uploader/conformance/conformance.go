// Package conformance is the importable test suite for the
// [uploader.Replica] contract: every backend (s3://, file://), every
// wrapper ([uploader.Encrypted]) and any new one runs the same cases, so a
// guarantee the lease, the shipper or restore rely on is checked against
// each real backend rather than assumed. Tests import it; the tailer
// binary does not (it imports package testing).
//
//	func TestMyBackend(t *testing.T) {
//		conformance.Run(t, func(t *testing.T) uploader.Replica { return openEmpty(t) })
//	}
package conformance

import (
	"testing"

	"github.com/tailer-backup/tailer/uploader"
)

// largeSize is the size of the "large object" cases: big enough to need
// several multipart parts with the lowered threshold the S3 tests use.
const largeSize = 40 << 20

// Run checks open's replicas against the contract documented on
// [uploader.Replica], one parallel subtest per case. Each case gets a
// fresh, empty replica from open (a new directory, bucket or prefix);
// open should register its own cleanup with t. Cases that move tens of
// MiB or make a thousand requests are skipped under -short.
func Run(t *testing.T, open func(t *testing.T) uploader.Replica) {
	cases := []struct {
		name string
		run  func(t *testing.T, r uploader.Replica)
		long string // why -short skips it ("": it runs)
	}{
		{"PutGetRoundTrip", testPutGetRoundTrip, ""},
		{"EmptyObject", testEmptyObject, ""},
		{"OverwriteSameBytes", testOverwriteSameBytes, ""},
		{"GetMissing", testGetMissing, ""},
		{"ListPrefixSorted", testListPrefixSorted, ""},
		{"ListMoreThan1000", testListMoreThan1000, "1001 durable PUTs"},
		{"ListAfter", testListAfter, ""},
		{"DeleteIdempotent", testDeleteIdempotent, ""},
		{"LargeObject", testLargeObject, "40 MiB objects"},
		{"NestedKeys", testNestedKeys, ""},
		{"ShortReader", testShortReader, ""},
		{"InvalidKeys", testInvalidKeys, ""},
		{"ContextCancelled", testContextCancelled, ""},
		{"CancelMidUpload", testCancelMidUpload, ""},
		{"Download", testDownload, ""},
		{"ReadRange", testReadRange, ""},
		{"ReadRangeLarge", testReadRangeLarge, "a 40 MiB object"},
		{"CreateIfAbsent", testCreateIfAbsent, ""},
		{"ReplaceIfUnchanged", testReplaceIfUnchanged, ""},
		{"ConcurrentConditionalWriters", testConcurrentConditional, ""},
		{"ConcurrentWriters", testConcurrentWriters, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.long != "" && testing.Short() {
				t.Skip(c.long + ": skipped under -short")
			}
			t.Parallel()
			c.run(t, open(t))
		})
	}
}
