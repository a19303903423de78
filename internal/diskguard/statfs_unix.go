//go:build linux || darwin || freebsd

package diskguard

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Statfs measures the filesystem holding path: the blocks available to
// unprivileged writers (not the root reserve) and its size.
func Statfs(path string) (Space, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Space{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return Space{Free: uint64(st.Bavail) * bs, Total: uint64(st.Blocks) * bs}, nil
}
