package walpin

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// inotifyEventSize is sizeof(struct inotify_event) without its name:
// wd int32, mask, cookie and len uint32, in the machine's byte order.
const inotifyEventSize = 16

// watchCreates calls created, from a goroutine of its own, with the name
// of every file created in or moved into dir, and lost when the kernel's
// event queue overflowed (events were dropped: rescan), until stop is
// called.
//
// It uses inotify directly rather than a watcher library because only
// IN_CREATE and IN_MOVED_TO are wanted: fsnotify, the usual choice,
// always subscribes to writes too (IN_MODIFY), and a busy store's
// directory sees thousands of WAL and SST appends a second, each an event
// to read and throw away on the tailer's CPU, which the primary shares.
func watchCreates(dir string, created func(name string), lost func()) (stop func(), err error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ONLYDIR); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch on %s: %w", dir, err)
	}
	// Non-blocking, so the runtime's poller serves Read and Close ends it.
	f := os.NewFile(uintptr(fd), "inotify "+dir)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return // closed by stop
			}
			for off := 0; off+inotifyEventSize <= n; {
				mask := binary.NativeEndian.Uint32(buf[off+4:])
				nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
				end := min(off+inotifyEventSize+nameLen, n)
				name := string(bytes.TrimRight(buf[off+inotifyEventSize:end], "\x00"))
				switch {
				case mask&unix.IN_Q_OVERFLOW != 0:
					lost()
				case name != "":
					created(name)
				}
				off = end
			}
		}
	}()
	return func() { f.Close(); <-done }, nil
}
