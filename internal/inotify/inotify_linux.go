package inotify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// eventSize is sizeof(struct inotify_event) without its name: wd int32,
// mask, cookie and len uint32, in the machine's byte order.
const eventSize = 16

type sys struct {
	fd   int
	f    *os.File
	done chan struct{}
}

func (w *Watcher) start(handle func(Event), overflow func()) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	// Non-blocking, so the runtime's poller serves Read and Close ends it.
	w.fd, w.f, w.done = fd, os.NewFile(uintptr(fd), "inotify"), make(chan struct{})
	go w.read(handle, overflow)
	return nil
}

func (w *Watcher) add(dir string, op Op) error {
	var mask uint32 = unix.IN_ONLYDIR
	if op&Create != 0 {
		mask |= unix.IN_CREATE
	}
	if op&CloseWrite != 0 {
		mask |= unix.IN_CLOSE_WRITE
	}
	if op&MovedTo != 0 {
		mask |= unix.IN_MOVED_TO
	}
	// Held across the system call so the reader, which looks the watch
	// descriptor up under the same lock, never sees an event of a
	// directory it does not know yet.
	w.mu.Lock()
	defer w.mu.Unlock()
	wd, err := unix.InotifyAddWatch(w.fd, dir, mask)
	if err != nil {
		return fmt.Errorf("inotify watch on %s: %w", dir, err)
	}
	w.dirs[int32(wd)] = dir
	return nil
}

func (w *Watcher) read(handle func(Event), overflow func()) {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return // closed by Close
		}
		for off := 0; off+eventSize <= n; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			end := min(off+eventSize+nameLen, n)
			name := string(bytes.TrimRight(buf[off+eventSize:end], "\x00"))
			off = end
			switch {
			case mask&unix.IN_Q_OVERFLOW != 0:
				overflow()
			case mask&unix.IN_IGNORED != 0: // the directory is gone or unwatched
				w.mu.Lock()
				delete(w.dirs, wd)
				w.mu.Unlock()
			case name != "":
				dir, ok := w.dir(wd)
				if !ok {
					continue
				}
				var op Op
				if mask&unix.IN_CREATE != 0 {
					op |= Create
				}
				if mask&unix.IN_CLOSE_WRITE != 0 {
					op |= CloseWrite
				}
				if mask&unix.IN_MOVED_TO != 0 {
					op |= MovedTo
				}
				handle(Event{Dir: dir, Name: name, Op: op, IsDir: mask&unix.IN_ISDIR != 0})
			}
		}
	}
}

func (w *Watcher) close() {
	w.f.Close()
	<-w.done
}
