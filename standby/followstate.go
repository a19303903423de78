package standby

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tailer-backup/tailer/internal/durable"
	"github.com/tailer-backup/tailer/internal/owned"
)

// followStateVersion is the version of the state file; a newer one is
// refused, since its fields may mean something this tailer cannot know.
const followStateVersion = 1

// followState is <standby>.tailer-follow.json: what a restarted follower
// needs to derive its position from the standby's sequence number.
type followState struct {
	Format     int    `json:"format_version"`
	Replica    string `json:"replica"` // informational: the standby may follow another replica of the same store
	Generation string `json:"generation"`
	// Identity is the standby store's RocksDB IDENTITY: it ties this file
	// to one store, so a crash while a rebuilt store is swapped in, or a
	// directory replaced by hand, is recognised.
	Identity string `json:"identity"`
	// SourceSeq (E) is the source sequence number the loaded store equals;
	// LocalSeq (S0) the standby's latest sequence number right after the
	// load. The standby is at source seq E + (latest - S0).
	SourceSeq uint64 `json:"source_seq"`
	LocalSeq  uint64 `json:"local_seq"`
	// Stopped is set by a clean stop, with the standby's latest sequence
	// number then: a different one at the next start means something else
	// (Stalwart, after a promotion) wrote to it.
	Stopped    bool   `json:"stopped"`
	StoppedSeq uint64 `json:"stopped_local_seq"`
	// BlobsDir is the standby's blob directory (FollowOptions.Blobs), ""
	// when it keeps none. BlobsSynced, written by a clean stop, says the
	// directory held every blob the standby referenced then; after a
	// crash it is false and the next start checks the whole set.
	BlobsDir    string    `json:"blobs_dir,omitempty"`
	BlobsDepth  int       `json:"blobs_depth,omitempty"` // its layout's depth (levels)
	BlobsSynced bool      `json:"blobs_synced,omitempty"`
	Updated     time.Time `json:"updated"`
}

// readState reads the state file; found is false when there is none.
func readState(path string) (followState, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return followState{}, false, nil
	}
	if err != nil {
		return followState{}, false, fmt.Errorf("read follower state: %w", err)
	}
	var s followState
	if err := json.Unmarshal(b, &s); err != nil {
		return followState{}, false, fmt.Errorf("%s is not a follower state file: %w", path, err)
	}
	if s.Format > followStateVersion {
		return followState{}, false, fmt.Errorf("%s was written by a newer tailer (format %d, this one reads %d): upgrade tailer", path, s.Format, followStateVersion)
	}
	if s.Generation == "" || s.Identity == "" {
		return followState{}, false, fmt.Errorf("%s names no generation or store identity: it is damaged; remove it and the standby to build the standby afresh", path)
	}
	return s, true, nil
}

// writeState replaces the state file atomically and durably: a temporary
// file, fsync'ed, renamed over it, the directory fsync'ed.
func writeState(path string, s followState) error {
	s.Format, s.Updated = followStateVersion, time.Now().UTC()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode follower state: %w", err)
	}
	if err := durable.WriteFile(path, append(b, '\n'), filepath.Base(path)+".tmp"); err != nil {
		return fmt.Errorf("follower state: %w", err)
	}
	return nil
}

// lockFollower makes sure one follower at a time works on a standby: two
// would build into the same sibling directory. The lock (flock) dies with
// the process, kill -9 included.
func lockFollower(p followPaths) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(p.lock), owned.DirMode); err != nil {
		return nil, fmt.Errorf("standby parent directory: %w", err)
	}
	f, err := os.OpenFile(p.lock, os.O_CREATE|os.O_RDWR, owned.FileMode)
	if err != nil {
		return nil, fmt.Errorf("lock the standby %s: %w", p.dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(p.lock)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := strings.TrimSpace(string(b))
			return nil, fmt.Errorf("%s is already followed by another tailer (pid %s): one follower per standby", p.dir, holder)
		}
		return nil, fmt.Errorf("lock the standby %s: %w", p.dir, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// checkNotOpen refuses a store directory whose RocksDB LOCK another
// process holds (Stalwart, or a promoted standby), naming the process, so
// the operator reads more than RocksDB's "Resource temporarily
// unavailable". Opening the store later would fail anyway; this is only
// the clear message (RocksDB takes a POSIX record lock, which F_GETLK
// reports to other processes).
func checkNotOpen(dir string) error {
	f, err := os.Open(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil // no store (yet), or unreadable: opening it will say
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return nil
	}
	if lk.Type == syscall.F_UNLCK {
		return nil
	}
	who := "another process"
	if lk.Pid > 0 {
		who = fmt.Sprintf("another process (pid %d%s)", lk.Pid, procName(int(lk.Pid)))
	}
	return fmt.Errorf("%s is open in %s (Stalwart?): tailer follows only into a store nothing else has open; stop that process, or follow into a new directory", dir, who)
}

// procName returns ", NAME" for a pid when /proc tells it.
func procName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return ", " + strings.TrimSpace(string(b))
}
