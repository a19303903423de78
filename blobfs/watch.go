package blobfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/tailer-backup/tailer/internal/inotify"
)

// WatchOptions tune Watch. Every is required.
type WatchOptions struct {
	// Every is the interval of the full scan that backs the directory
	// watch up (events dropped on a queue overflow, directories created
	// faster than they could be watched, no inotify at all).
	Every time.Duration
	// Foreign is told of entries that do not belong to the layout, at
	// each full scan.
	Foreign func(Foreign)
	// Log receives warnings (the watch could not be set up) and debug
	// records. nil discards them.
	Log *slog.Logger
}

// Watch reports blob files to found as Stalwart writes them, until ctx
// ends: first every file already there (a full scan), then each file as
// its writer closes it or it is renamed in (inotify IN_CLOSE_WRITE and
// IN_MOVED_TO on every leaf directory, IN_CREATE and IN_MOVED_TO on the
// levels above, so new level directories are watched and scanned as they
// appear), and again every file at each periodic full scan. A file may be
// reported more than once and before it is complete: found verifies it
// (Verify, Result.Ready) and keeps what it has done. found runs on
// Watch's goroutine, one call at a time; its error stops Watch and is
// returned. Watch returns nil when ctx ends.
//
// Without inotify, or when the kernel refuses more watches
// (fs.inotify.max_user_watches; a depth-2 store has up to 65,792
// directories), Watch logs a warning once and the periodic scan alone
// finds new files.
func (l Layout) Watch(ctx context.Context, found func(Entry) error, opt WatchOptions) error {
	if opt.Every <= 0 {
		return fmt.Errorf("blob store watch: scan interval %v must be positive", opt.Every)
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if st, err := os.Stat(l.Root); err != nil {
		return fmt.Errorf("blob store %s: %w", l.Root, err)
	} else if !st.IsDir() {
		return fmt.Errorf("blob store %s is not a directory", l.Root)
	}
	wt := &watchState{l: l, log: log, paths: make(chan watched, 4096), rescan: make(chan struct{}, 1)}
	if w, err := inotify.New(wt.event, wt.overflow); err != nil {
		wt.warn(err)
	} else {
		wt.w = w
		defer w.Close()
		wt.addTree(l.Root, 0)
	}
	// found's error stops Watch; a failure to read the store is logged
	// and left to the next scan.
	call := func(e Entry) error {
		if err := found(e); err != nil {
			return foundError{err}
		}
		return nil
	}
	sopt := ScanOptions{Foreign: opt.Foreign}
	check := func(err error) error {
		var fe foundError
		switch {
		case err == nil || ctx.Err() != nil:
			return nil
		case errors.As(err, &fe):
			return fe.err
		}
		log.Warn("scanning the blob store failed; the next scan retries", "dir", l.Root, "err", err)
		return nil
	}
	if err := check(l.Scan(ctx, call, sopt)); err != nil {
		return err
	}
	t := time.NewTicker(opt.Every)
	defer t.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			err = l.Scan(ctx, call, sopt)
		case <-wt.rescan:
			err = l.Scan(ctx, call, sopt)
		case p := <-wt.paths:
			if p.dir {
				err = l.ScanDir(ctx, p.path, call, sopt)
				break
			}
			e, ok, serr := l.EntryAt(p.path)
			switch {
			case serr != nil:
				log.Debug("a blob file reported by the directory watch could not be read; the next scan retries", "path", p.path, "err", serr)
			case ok:
				err = call(e)
			}
		}
		if err := check(err); err != nil {
			return err
		}
	}
}

// foundError carries found's error through Scan, to tell it from a
// failure to read the store.
type foundError struct{ err error }

func (e foundError) Error() string { return e.err.Error() }
func (e foundError) Unwrap() error { return e.err }

type watched struct {
	path string
	dir  bool // a new level directory, to scan
}

type watchState struct {
	l      Layout
	log    *slog.Logger
	w      *inotify.Watcher
	warned atomic.Bool // the watch and its goroutine both add directories
	paths  chan watched
	rescan chan struct{}
}

func (wt *watchState) warn(err error) {
	if !wt.warned.Swap(true) {
		wt.log.Warn("watching the blob store for new files failed; new blobs are found by the periodic scan only", "dir", wt.l.Root, "err", err)
	}
}

// watchOp is what to watch for in a directory at level (0 = the root).
func (wt *watchState) watchOp(level int) inotify.Op {
	if level < wt.l.Levels {
		return inotify.Create | inotify.MovedTo // new level directories
	}
	return inotify.CloseWrite | inotify.MovedTo // blob files written or renamed in
}

// addTree watches dir (at level) and every level directory under it.
func (wt *watchState) addTree(dir string, level int) {
	if wt.w == nil {
		return
	}
	if err := wt.w.Add(dir, wt.watchOp(level)); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			wt.warn(err)
		}
		return
	}
	if level == wt.l.Levels {
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return // the scan reports it
	}
	for _, de := range ents {
		if _, ok := parseLevel(de.Name()); ok && de.IsDir() {
			wt.addTree(filepath.Join(dir, de.Name()), level+1)
		}
	}
}

// event runs on the watcher's goroutine: it watches new level directories
// at once (so files created in them from now on raise events) and queues
// the rest for Watch's goroutine. A full queue means a rescan.
func (wt *watchState) event(e inotify.Event) {
	path := filepath.Join(e.Dir, e.Name)
	prefix, ok := wt.l.dirPrefix(e.Dir)
	if !ok {
		return
	}
	level := len(prefix)
	if level < wt.l.Levels {
		if !e.IsDir {
			return
		}
		if _, ok := parseLevel(e.Name); !ok {
			return
		}
		// Files created before the watch was in place raise no event:
		// the directory is scanned once watched.
		wt.addTree(path, level+1)
		wt.queue(watched{path: path, dir: true})
		return
	}
	if !e.IsDir && e.Op&(inotify.CloseWrite|inotify.MovedTo) != 0 {
		wt.queue(watched{path: path})
	}
}

func (wt *watchState) queue(p watched) {
	select {
	case wt.paths <- p:
	default:
		wt.overflow()
	}
}

func (wt *watchState) overflow() {
	select {
	case wt.rescan <- struct{}{}:
	default:
	}
}
