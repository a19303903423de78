//go:build !linux

package walpin

import "errors"

// watchCreates is Linux-only (inotify); elsewhere the periodic scan pins.
func watchCreates(string, func(string), func()) (func(), error) {
	return nil, errors.New("watching a directory needs Linux inotify")
}
