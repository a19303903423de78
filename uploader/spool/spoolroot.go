package spool

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tailer-backup/tailer/uploader"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/tailer-backup/tailer/internal/durable"
)

// SpoolOwnerFile is the file in each replica's spool directory that
// records whose queue it is, so a later start (or `tailer status`) can
// tell whose objects a directory holds even after the replica's URL is
// spelled differently.
const SpoolOwnerFile = "replica.json"

// SpoolOwner is the content of SpoolOwnerFile.
type SpoolOwner struct {
	Identity string `json:"identity"` // the replica's Identity: what the directory is keyed by
	Replica  string `json:"replica"`  // its URL as last shown, for operators
}

// SpoolInfo describes one spool directory under a spool root.
type SpoolInfo struct {
	Dir string
	// Owner is nil when the directory has no SpoolOwnerFile: an older
	// tailer wrote it (its name is then a hash of the replica's URL).
	Owner   *SpoolOwner
	Objects int   // committed objects waiting for upload
	Bytes   int64 // their size
}

// OwnedBy reports whether the directory is r's queue: its recorded
// identity is r's, or (unrecorded) its name is what r's queue is named now
// or was named by older tailers.
func (i SpoolInfo) OwnedBy(r uploader.Replica) bool {
	if i.Owner != nil {
		return i.Owner.Identity == r.Identity()
	}
	base := filepath.Base(i.Dir)
	return base == spoolDirName(r.Identity()) || base == spoolDirName(r.String())
}

// spoolDirName is a short hash of s: older tailers hashed the replica's
// URL as shown, current ones its Identity (the same string for file://).
func spoolDirName(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// isHashName reports whether name looks like a spoolDirName, so a
// directory without SpoolOwnerFile is taken for a spool only if tailer
// could have made it.
func isHashName(name string) bool {
	if len(name) != 12 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// ErrSpoolOwner is wrapped when a spool directory records another
// replica than the one whose name it has.
var ErrSpoolOwner = errors.New("spool directory belongs to another replica")

// OpenReplicaSpool opens r's queue under root, in a directory named by r's
// Identity, so that a different spelling of the same replica's URL (a
// region added, the endpoint rewritten) finds the objects still queued
// for it. A queue left under another name is moved there first: one whose
// SpoolOwnerFile records r's identity, else one an older tailer named
// after r's URL as shown. moved names the directory it came from ("" when
// nothing moved). The directory's SpoolOwnerFile is (re)written.
func OpenReplicaSpool(root string, r uploader.Replica) (sp *Spool, moved string, err error) {
	id := r.Identity()
	dir := filepath.Join(filepath.Clean(root), spoolDirName(id))
	owner, err := readSpoolOwner(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if moved, err = adoptSpool(root, dir, r); err != nil {
			return nil, "", err
		}
	case err != nil:
		return nil, "", err
	case owner != nil && owner.Identity != id:
		return nil, "", fmt.Errorf("open spool %s for %s: %w (%s, recorded in %s)", dir, r, ErrSpoolOwner, owner.Identity, SpoolOwnerFile)
	}
	sp, err = OpenSpool(dir)
	if err != nil {
		return nil, "", err
	}
	if owner == nil || owner.Replica != r.String() {
		if err := writeSpoolOwner(dir, SpoolOwner{Identity: id, Replica: r.String()}); err != nil {
			return nil, "", err
		}
	}
	return sp, moved, nil
}

// adoptSpool renames r's queue found under another name (see
// OpenReplicaSpool) to dir, which does not exist.
func adoptSpool(root, dir string, r uploader.Replica) (string, error) {
	infos, err := ListSpools(root)
	if err != nil {
		return "", err
	}
	// A recorded owner first: it says whose the directory is.
	slices.SortStableFunc(infos, func(a, b SpoolInfo) int {
		switch {
		case (a.Owner != nil) == (b.Owner != nil):
			return 0
		case a.Owner != nil:
			return -1
		}
		return 1
	})
	for _, i := range infos {
		if i.Dir == dir || !i.OwnedBy(r) {
			continue
		}
		if err := os.Rename(i.Dir, dir); err != nil {
			return "", fmt.Errorf("move the spool of %s from %s to %s: %w", r, i.Dir, dir, err)
		}
		if err := durable.SyncDir(root); err != nil {
			return "", err
		}
		return i.Dir, nil
	}
	return "", nil
}

// ListSpools describes the spool directories under root (none if root
// does not exist), reading only: directories that are neither recorded by
// a SpoolOwnerFile nor named like a tailer spool are left out.
func ListSpools(root string) ([]SpoolInfo, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list spool directories in %s: %w", root, err)
	}
	var out []SpoolInfo
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		owner, err := readSpoolOwner(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if owner == nil && !isHashName(e.Name()) {
			continue
		}
		pending, err := (&Spool{dir: dir}).Pending()
		if err != nil {
			return nil, err
		}
		info := SpoolInfo{Dir: dir, Owner: owner, Objects: len(pending)}
		for _, p := range pending {
			info.Bytes += p.Size
		}
		out = append(out, info)
	}
	return out, nil
}

// readSpoolOwner reads dir's SpoolOwnerFile: nil (and no error) when dir
// exists without one; an error wrapping fs.ErrNotExist when dir does not
// exist.
func readSpoolOwner(dir string) (*SpoolOwner, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	p := filepath.Join(dir, SpoolOwnerFile)
	raw, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var o SpoolOwner
	if err := json.Unmarshal(raw, &o); err != nil || o.Identity == "" {
		return nil, fmt.Errorf("%s is not a spool owner record (want {\"identity\": ..., \"replica\": ...}): move it away if tailer did not write it", p)
	}
	return &o, nil
}

// writeSpoolOwner replaces dir's SpoolOwnerFile atomically (temp file,
// fsync, rename, fsync dir); the temp name is one OpenSpool discards.
func writeSpoolOwner(dir string, o SpoolOwner) error {
	raw, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(dir, SpoolOwnerFile), append(raw, '\n'), uploader.TempPrefix+"owner-*")
}
