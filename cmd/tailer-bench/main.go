// Command tailer-bench measures tailer on this machine: lag, overhead on
// the primary, export, restore, memory and S3 cost, side by side with the
// goals (see `tailer-bench --help`). It runs the tailer binary as a
// subprocess against a load generator and its own MinIO. It is a command
// of its own, not part of tailer, so that the production binary does not
// carry the load generator or the test MinIO runner; `tailer bench` runs
// it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/bench"
	"github.com/tailer-backup/tailer/internal/benchflags"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tailer-bench:", strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var tailer, logFormat, logLevel string
	cmd := &cobra.Command{
		Use:   "tailer-bench [--quick] [--json] [--size 64MiB] [--tailer PATH]",
		Short: "Measure tailer's lag, overhead, export, restore, memory and S3 cost on this machine",
		Long: benchflags.About + `

tailer-bench runs the tailer binary given with --tailer (default: the
tailer beside tailer-bench, else the one on PATH); 'tailer bench' runs
tailer-bench with --tailer set to itself. Build both:

  go build -o bin/ ./cmd/tailer ./cmd/tailer-bench`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := cmd.Flags()
	v := benchflags.Define(f)
	f.StringVar(&tailer, "tailer", "", "the tailer binary to measure (default: tailer beside tailer-bench, else on PATH)")
	f.StringVar(&logFormat, "log-format", "auto", "log format of the bench's own log: text, json, or auto (text on a terminal, JSON otherwise); each tailer subprocess logs at warn to a file in the work directory (see --keep)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see 'tailer-bench --help')", err)
	})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o, err := options(f, v)
		if err != nil {
			return err
		}
		if o.Log, err = logger(logFormat, logLevel); err != nil {
			return err
		}
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find tailer-bench's own path: %w", err)
		}
		if o.Bin, err = findTailer(tailer, self); err != nil {
			return err
		}
		o.Progress = os.Stderr
		rep, err := bench.Run(cmd.Context(), o)
		if err != nil {
			return err
		}
		if v.JSON {
			return rep.WriteJSON(cmd.OutOrStdout())
		}
		return rep.WriteTable(cmd.OutOrStdout())
	}
	return cmd
}
