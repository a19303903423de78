// Command tailer continuously backs up the RocksDB store of a live
// Stalwart mail server into S3-compatible storage or a directory, and
// restores it to any sequence number it holds. See `tailer --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "tailer:", oneLine(err))
		}
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// oneLine renders an error as the single line scripts and log collectors
// expect: cobra's own errors (an unknown command with "Did you mean
// this?" suggestions) span several lines. An unknown command also gets a
// pointer to the command list.
func oneLine(err error) string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "unknown error"
	}
	msg := lines[0]
	if len(lines) > 1 {
		msg += "; " + strings.Join(lines[1:], " ")
	}
	if strings.HasPrefix(msg, "unknown command") {
		msg += " (see 'tailer --help')"
	}
	return msg
}
