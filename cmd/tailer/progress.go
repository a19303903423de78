package main

import (
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/tailer-backup/tailer/internal/progress"
)

// stderrLine is stderr as the logger and the progress line share it: on a
// terminal a log record then never lands in the middle of the progress
// line. Elsewhere it is a plain pass-through.
var stderrLine = progress.NewLine(os.Stderr)

// progressTerminal is where export and restore draw their progress line:
// stderr when it is a terminal, else nil (progress goes to the log every
// few seconds instead). A variable so tests can force either.
var progressTerminal = func() io.Writer {
	if term.IsTerminal(int(os.Stderr.Fd())) {
		return stderrLine
	}
	return nil
}

// phases turns restore.Options.Progress calls into one reporter per phase
// (download in bytes, load in keys), finishing each when the next starts.
type phases struct {
	log  *slog.Logger
	mu   sync.Mutex
	cur  string
	rep  *progress.Reporter
	term io.Writer
}

func newPhases(log *slog.Logger) *phases { return &phases{log: log, term: progressTerminal()} }

// update implements restore.Options.Progress.
func (p *phases) update(phase string, done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if phase != p.cur || p.rep == nil {
		if p.rep != nil {
			p.rep.Done()
		}
		unit, label := progress.Bytes, phase
		switch phase {
		case "load":
			unit, label = progress.Count, "load (keys)"
		case "blobs":
			unit, label = progress.Count, "blobs"
		}
		p.cur = phase
		p.rep = progress.New(progress.Options{Label: label, Unit: unit, Terminal: p.term, Log: p.log})
	}
	p.rep.SetTotal(total)
	p.rep.Set(done)
}

// finish ends the current phase: done on success, aborted on failure.
func (p *phases) finish(failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rep == nil {
		return
	}
	if failed {
		p.rep.Abort()
	} else {
		p.rep.Done()
	}
	p.rep = nil
}

// newExportProgress reports an export: bytes of the export written,
// against the size of the store's files as an estimate of the total.
func newExportProgress(log *slog.Logger, db string) *progress.Reporter {
	rep := progress.New(progress.Options{Label: "export", Terminal: progressTerminal(), Log: log, Estimate: true})
	rep.SetTotal(storeSizeEstimate(db))
	return rep
}

// storeSizeEstimate is the size of a store's table and blob files: the
// export's compressed size is of the same order, so it serves as the
// export progress total (shown as an estimate). 0 when unknown.
func storeSizeEstimate(db string) int64 {
	var n int64
	filepath.WalkDir(db, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p != db {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".sst") || strings.HasSuffix(p, ".blob") || strings.HasSuffix(p, ".log") {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
