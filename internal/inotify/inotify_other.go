//go:build !linux

package inotify

type sys struct{}

func (w *Watcher) start(func(Event), func()) error { return ErrUnsupported }
func (w *Watcher) add(string, Op) error            { return ErrUnsupported }
func (w *Watcher) close()                          {}
