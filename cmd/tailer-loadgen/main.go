// Command tailer-loadgen writes a RocksDB store shaped like Stalwart 0.16's
// while tailer tails it, records marks (per-family digests at a sequence
// number) and later checks a restored store against them. It is the primary
// of tailer's integration tests and demo; see `tailer-loadgen --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// errReported is returned by commands that already printed why they fail.
var errReported = errors.New("reported")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "tailer-loadgen:", err)
		}
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tailer-loadgen",
		Short: "Write a Stalwart-like RocksDB store under load, and verify restores of it",
		Long: `tailer-loadgen plays the part of a Stalwart 0.16 mail server's RocksDB store
for tailer's tests and demo: the same column families, merge operator, blob
files and SST format, small write buffers so that flushes and WAL deletion
happen often, and transactions shaped like Stalwart's (deliveries, flag
changes, expunges, changelog purges, counter cleanup, queue churn), one
WriteBatch each. The content is a function of --seed: the same seed and
transaction count give the same store.

While it writes it records marks: the sequence number and a digest of every
column family, from one RocksDB snapshot. "verify" compares a restored store
with a mark.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newVerifyCmd())
	return root
}
