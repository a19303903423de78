package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/internal/benchflags"
)

// benchCommand is the program `tailer bench` runs.
const benchCommand = "tailer-bench"

// newBenchCmd is `tailer bench`: the benchmark, which lives in its own
// command (cmd/tailer-bench) so that this binary carries neither the load
// generator nor the test MinIO runner. It takes the benchmark's flags like
// any tailer command (command line, TAILER_<FLAG>, --config, limits) and
// then replaces itself with tailer-bench, found beside this binary or on
// PATH, with those flags and --tailer set to this binary: same process,
// same stdio, same exit status.
func newBenchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench [--quick] [--json] [--size 64MiB]",
		Short: "Measure lag, overhead, export, restore, memory and S3 cost on this machine (runs tailer-bench)",
		Long: benchflags.About + `

The benchmark is a separate command, tailer-bench, so that tailer itself
does not carry the load generator and test servers it needs: 'tailer bench'
runs the tailer-bench beside this binary (else the one on PATH) with these
flags and --tailer set to this binary. Build both:

  go build -o bin/ ./cmd/tailer ./cmd/tailer-bench`,
		Args: cobra.NoArgs,
	}
	benchflags.Define(cmd.Flags()) // tailer-bench reads them; limits are checked here first
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the tailer binary for %s to measure: %w", benchCommand, err)
		}
		prog, err := findBench(self)
		if err != nil {
			return err
		}
		argv := append([]string{prog}, benchflags.Args(cmd.Flags())...)
		argv = append(argv, "--log-format="+g.logFormat, "--log-level="+g.logLevel, "--tailer="+self)
		if err := syscall.Exec(prog, argv, os.Environ()); err != nil {
			return fmt.Errorf("run %s: %w", prog, err)
		}
		return nil // not reached: Exec replaced this process
	}
	return cmd
}

// findBench returns tailer-bench beside self, else on PATH.
func findBench(self string) (string, error) {
	beside := filepath.Join(filepath.Dir(self), benchCommand)
	if st, err := os.Stat(beside); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
		return beside, nil
	}
	p, err := exec.LookPath(benchCommand)
	if err == nil {
		return p, nil
	}
	if !errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("find %s: %w", benchCommand, err)
	}
	return "", fmt.Errorf("bench needs %s, which is neither beside %s nor on PATH: build it with 'go build -o %s ./cmd/tailer-bench'",
		benchCommand, self, filepath.Join(filepath.Dir(self), benchCommand))
}
