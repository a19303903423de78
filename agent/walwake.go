package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tailer-backup/tailer/internal/inotify"
)

// walProbeEvery is how often the WAL file being read is checked for
// growth. A stat every 10 ms costs next to nothing (one system call, no
// read) and bounds the wait between a commit and its capture; a watch for
// IN_MODIFY would do with no wait at all, but it fires for every append,
// thousands a second under load, each an event read on the CPU the
// primary shares (internal/inotify says why it does not offer it).
const walProbeEvery = 10 * time.Millisecond

// walPos is where the reader stands: the primary's WAL file it reads
// (its pin shares the inode, so either name shows the writes) and the
// offset after the last complete record read. path "" means the reader
// has no cursor yet: it looks for the WAL file by sequence number.
type walPos struct {
	path   string
	offset int64
}

// walWake tells the Run goroutine that the WAL may hold new records: the
// file being read grew past what was read, or a file was created in the
// store's directory (a new WAL file: the one being read is complete and
// the writes go on in the new one). Wake-ups coalesce in a channel of
// capacity 1: one read takes whatever arrived meanwhile.
type walWake struct {
	db   string
	c    chan struct{}
	pos  atomic.Pointer[walPos]
	stop func()
}

// startWalWake starts the probe and the directory watch; stop ends both.
// Where the directory cannot be watched, the probe also compares the
// directory's modification time (a coarse clock: a file created in the
// same tick as a probe is seen at the next backstop poll instead).
func startWalWake(ctx context.Context, db string, log interface{ Warn(string, ...any) }) *walWake {
	w := &walWake{db: db, c: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(ctx)
	watched := false
	iw, err := inotify.New(func(e inotify.Event) {
		if strings.HasSuffix(e.Name, ".log") {
			w.signal()
		}
	}, w.signal)
	if err == nil {
		if err = iw.Add(db, inotify.Create|inotify.MovedTo); err != nil {
			iw.Close()
		} else {
			watched = true
		}
	}
	if err != nil {
		log.Warn("cannot watch the store's directory for new WAL files; noticing them by its modification time", "dir", db, "err", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.probe(ctx, !watched)
	}()
	w.stop = func() {
		cancel()
		<-done
		if watched {
			iw.Close()
		}
	}
	return w
}

// signal wakes the reader, or leaves the wake-up already pending.
func (w *walWake) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// at records where the reader stands after a read (file 0: no cursor).
func (w *walWake) at(file uint64, offset int64) {
	if w == nil {
		return // not started yet (resume)
	}
	p := &walPos{offset: offset}
	if file != 0 {
		p.path = filepath.Join(w.db, fmt.Sprintf("%06d.log", file))
	}
	w.pos.Store(p)
}

// probe checks every walProbeEvery whether the file being read grew past
// what was read since it last woke the reader for it, so a record
// being appended (its size moving past the offset before it is
// complete) wakes the reader once per change, not at every probe.
func (w *walWake) probe(ctx context.Context, dirTimes bool) {
	t := time.NewTicker(walProbeEvery)
	defer t.Stop()
	var woke walPos      // the file and size the last wake-up was for
	var dirMod time.Time // the directory's mtime, when there is no watch
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if dirTimes {
			if fi, err := os.Stat(w.db); err == nil && !fi.ModTime().Equal(dirMod) {
				dirMod = fi.ModTime()
				w.signal()
			}
		}
		p := w.pos.Load()
		if p == nil || p.path == "" {
			w.signal() // no cursor: the reader looks for the file itself
			continue
		}
		fi, err := os.Stat(p.path)
		if err != nil {
			// Deleted by the primary after a newer file took over: the
			// reader goes on from its pin, once.
			if woke.path != p.path || woke.offset != -1 {
				woke = walPos{path: p.path, offset: -1}
				w.signal()
			}
			continue
		}
		if size := fi.Size(); size > p.offset && (woke.path != p.path || woke.offset != size) {
			woke = walPos{path: p.path, offset: size}
			w.signal()
		}
	}
}
