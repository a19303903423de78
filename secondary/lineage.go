package secondary

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrReplaced means the store under the secondary is not the one it
// follows any more: the directory was swapped (restored or replaced by
// rename) or its files were restored in place.
var ErrReplaced = errors.New("the store was replaced")

// lineage is what tells one store's life from another's without asking
// RocksDB: Debian's RocksDB 9.10 (built with assertions) aborts the whole
// process in TryCatchUpWithPrimary when the MANIFEST it follows was
// swapped for an older one (version_edit_handler.cc:619, reproduced), so
// tailer must notice before it catches up.
type lineage struct {
	dev, ino uint64 // the directory itself
	manifest uint64 // MANIFEST number CURRENT named last time
}

func readLineage(dir string) (lineage, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return lineage{}, fmt.Errorf("stat store %s: %w", dir, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return lineage{}, fmt.Errorf("stat store %s: no inode information", dir)
	}
	cur, err := os.ReadFile(filepath.Join(dir, "CURRENT"))
	if err != nil {
		return lineage{}, fmt.Errorf("read CURRENT of %s: %w", dir, err)
	}
	num, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(cur)), "MANIFEST-"), 10, 64)
	if err != nil {
		return lineage{}, fmt.Errorf("CURRENT of %s names %q, not a MANIFEST", dir, strings.TrimSpace(string(cur)))
	}
	return lineage{dev: uint64(sys.Dev), ino: sys.Ino, manifest: num}, nil
}

// CheckLineage reports ErrReplaced (with the reason) when the store is no
// longer the one the secondary was opened on; call it before CatchUp. A
// store directory that is missing for a moment (being swapped) is an
// ordinary error: try again at the next poll.
func (s *Secondary) CheckLineage() error {
	now, err := readLineage(s.primary)
	if err != nil {
		return err
	}
	switch {
	case now.dev != s.lin.dev || now.ino != s.lin.ino:
		return fmt.Errorf("%w: the directory %s is a different one than when tailer opened it (swapped by rename)", ErrReplaced, s.primary)
	case now.manifest < s.lin.manifest:
		return fmt.Errorf("%w: CURRENT of %s went back from MANIFEST-%06d to MANIFEST-%06d (files restored in place)", ErrReplaced, s.primary, s.lin.manifest, now.manifest)
	}
	s.lin.manifest = now.manifest
	return nil
}
