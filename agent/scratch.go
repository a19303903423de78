package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/setting"
)

// claimScratch locks the scratch directory for this process (the lock
// dies with it, kill -9 included) and returns the tailer instance id kept
// there. Two tailers never share a scratch directory: spool, WAL pins and
// snapshots there belong to one writer. The id survives restarts, so a
// restarted tailer can take back the replica lease its previous life held.
func claimScratch(dir string) (*os.File, string, error) {
	f, err := os.OpenFile(filepath.Join(dir, "tailer.lock"), os.O_CREATE|os.O_RDWR, owned.FileMode)
	if err != nil {
		return nil, "", fmt.Errorf("lock scratch dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, "", &setting.Error{Key: "Scratch", Name: "scratch directory", Before: fmt.Sprintf("scratch dir %s is in use by another tailer process: give each tailer its own ", dir)}
		}
		return nil, "", fmt.Errorf("lock scratch dir %s: %w", dir, err)
	}
	// f stays open (and locked) until the agent stops; the caller keeps it.
	idPath := filepath.Join(dir, "instance-id")
	if b, err := os.ReadFile(idPath); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return f, strings.TrimSpace(string(b)), nil
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		f.Close()
		return nil, "", err
	}
	id := hex.EncodeToString(r[:])
	if err := os.WriteFile(idPath, []byte(id+"\n"), owned.FileMode); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("write %s: %w", idPath, err)
	}
	return f, id, nil
}
