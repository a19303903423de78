package main

import (
	"fmt"
	"github.com/tailer-backup/tailer/internal/progress"
	"io"
	"log/slog"
	"time"

	"github.com/tailer-backup/tailer/stalwartfmt"
)

// Output formats of export and restore.
const (
	formatTailer   = "tailer"
	formatStalwart = "stalwart"
)

// checkFormat validates --format and the flags that go with each value, so
// a mix-up (--to with --format stalwart, --out without it) fails before
// anything is read.
func checkFormat(format string, set func(string) bool, tailerOnly, stalwartOnly []string) error {
	switch format {
	case formatTailer:
		for _, f := range stalwartOnly {
			if set(f) {
				return fmt.Errorf("--%s goes with --format stalwart", f)
			}
		}
	case formatStalwart:
		for _, f := range tailerOnly {
			if set(f) {
				return fmt.Errorf("--%s is for --format tailer; --format stalwart writes Stalwart's import files into --out", f)
			}
		}
	default:
		return fmt.Errorf("--format %q: use tailer (the default) or stalwart (Stalwart's own export files, for stalwart --import)", format)
	}
	return nil
}

// stalwartOptions logs progress every interval while the files are written.
func stalwartOptions(log *slog.Logger, every time.Duration) stalwartfmt.Options {
	return stalwartfmt.Options{
		Log:           log,
		ProgressEvery: every,
		Progress: func(p stalwartfmt.Progress) {
			sub := "-"
			if p.Subspace != 0 {
				sub = string(p.Subspace)
			}
			log.Info("writing Stalwart export", "subspace", sub, "files_done", p.Files, "records", p.Records,
				"raw", progress.HumanBytes(p.Raw), "written", progress.HumanBytes(p.Written), "elapsed", roundDur(p.Elapsed))
		},
	}
}

// printStalwartSummary prints files, records and bytes per subspace, and
// how to import the result.
func printStalwartSummary(w io.Writer, sum stalwartfmt.Summary) {
	fmt.Fprintf(w, "wrote Stalwart export files to %s: store at seq %d, schema %d, %d files, %d records, %s raw, %s written in %s\n",
		sum.Dir, sum.Seq, sum.Schema, len(sum.Files), sum.Records, progress.HumanBytes(sum.Raw), progress.HumanBytes(sum.Bytes), roundDur(sum.Elapsed))
	fmt.Fprintf(w, "  %-12s %12s %12s %12s\n", "file", "records", "raw", "bytes")
	for _, f := range sum.SortedFiles() {
		fmt.Fprintf(w, "  %-12s %12d %12s %12s\n", f.Name, f.Records, progress.HumanBytes(f.Raw), progress.HumanBytes(f.Bytes))
	}
	if sum.SourcedBlobs > 0 {
		fmt.Fprintf(w, "  %d blobs read from the filesystem blob store (not in t)\n", sum.SourcedBlobs)
	}
	if sum.MissingBlobs > 0 {
		fmt.Fprintf(w, "  warning: %d blobs linked in k are not in t nor in a blob store given, and were left out (Stalwart's export skips them too); for a filesystem blob store give --blobs DIR (export) or ship it with 'tailer run' (restore); others (S3) copy separately\n", sum.MissingBlobs)
	}
	if sum.UnmarkedBlobs > 0 {
		fmt.Fprintf(w, "  warning: %d blob values had no known marker byte and were written as stored\n", sum.UnmarkedBlobs)
	}
	if len(sum.Ignored) > 0 {
		fmt.Fprintf(w, "  note: families %v are not part of Stalwart's export for schema %d and were left out\n", sum.Ignored, sum.Schema)
	}
	fmt.Fprintf(w, "  import into a new, empty store (before Stalwart first starts on it), with a Stalwart of schema %d:\n", sum.Schema)
	fmt.Fprintf(w, "    stalwart --config CONFIG --import %s\n", sum.Dir)
}
