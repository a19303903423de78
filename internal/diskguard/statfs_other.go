//go:build !(linux || darwin || freebsd)

package diskguard

import "errors"

// Statfs is not implemented on this system: the guard reports the error
// and never trips.
func Statfs(path string) (Space, error) {
	return Space{}, errors.New("measuring free space is not supported on this system")
}
