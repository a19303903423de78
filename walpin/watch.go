package walpin

import "github.com/tailer-backup/tailer/internal/inotify"

// watchCreates calls created, from a goroutine of its own, with the name
// of every file created in or moved into dir, and lost when the kernel's
// event queue overflowed (events were dropped: rescan), until stop is
// called. Only creations are watched (internal/inotify says why); where
// there is no inotify it fails and the periodic scan pins alone.
func watchCreates(dir string, created func(name string), lost func()) (stop func(), err error) {
	w, err := inotify.New(func(e inotify.Event) { created(e.Name) }, lost)
	if err != nil {
		return nil, err
	}
	if err := w.Add(dir, inotify.Create|inotify.MovedTo); err != nil {
		w.Close()
		return nil, err
	}
	return w.Close, nil
}
