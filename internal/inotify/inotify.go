// Package inotify watches directories for new files with Linux inotify,
// directly rather than through a watcher library, so that a caller gets
// only the events it asks for: fsnotify, the usual choice, always
// subscribes to writes too (IN_MODIFY), and a busy store's directory sees
// thousands of appends a second, each an event to read and throw away on
// the tailer's CPU, which the primary shares. walpin watches the store's
// WAL directory with it, blobfs a blob store's directory tree.
package inotify

import (
	"errors"
	"sync"
)

// Op is a set of events to watch for, or that happened.
type Op uint8

const (
	// Create: a file or directory was created in the directory.
	Create Op = 1 << iota
	// CloseWrite: a file opened for writing was closed (a writer is done
	// with it, for now).
	CloseWrite
	// MovedTo: a file or directory was renamed into the directory.
	MovedTo
)

// Event is one event on a watched directory.
type Event struct {
	Dir   string // the watched directory, as given to Add
	Name  string // the entry's name in Dir
	Op    Op
	IsDir bool // the entry is a directory
}

// ErrUnsupported is returned by New where there is no inotify.
var ErrUnsupported = errors.New("watching a directory needs Linux inotify")

// Watcher delivers events of the directories added to it to one handler,
// from a goroutine of its own, until Close.
type Watcher struct {
	sys
	mu   sync.Mutex
	dirs map[int32]string
}

// New starts a watcher. handle gets every event of a watched directory;
// overflow is called when the kernel's event queue overflowed and events
// were dropped, so the caller rescans. Both run on the watcher's
// goroutine, one call at a time; they may call Add.
func New(handle func(Event), overflow func()) (*Watcher, error) {
	w := &Watcher{dirs: map[int32]string{}}
	if err := w.start(handle, overflow); err != nil {
		return nil, err
	}
	return w, nil
}

// Add watches dir (a directory; anything else is an error) for the events
// in op. Adding a directory again replaces its set.
func (w *Watcher) Add(dir string, op Op) error { return w.add(dir, op) }

// Close stops the watcher and waits for its goroutine (and so for a
// handler call under way) to end. Close must not be called from handle.
func (w *Watcher) Close() { w.close() }

func (w *Watcher) dir(wd int32) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := w.dirs[wd]
	return d, ok
}
