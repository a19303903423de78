package standby

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/segment"
)

// Test helpers shared with restore's tests (copied: test files cannot be
// imported across packages).

// sameState compares a standby's digests with the source's.
func sameState(t *testing.T, got, want []segment.FamilySum) {
	t.Helper()
	m := map[string]segment.FamilySum{}
	for _, f := range got {
		m[f.Name] = f
	}
	for _, f := range want {
		if g := m[f.Name]; g.Keys != f.Keys || g.Digest != f.Digest {
			t.Errorf("family %s: restored %d keys %.12s, source had %d keys %.12s", f.Name, g.Keys, g.Digest, f.Keys, f.Digest)
		}
	}
}

// blobFiles lists the blob files under dir by hash (tailer's temporary
// files are reported as such, so a test sees one left behind).
func blobFiles(t *testing.T, l blobfs.Layout) map[blobfs.Hash][]byte {
	t.Helper()
	return blobFilesWhile(t, l, false)
}

// blobFilesWhile is blobFiles; writing says tailer may be writing there
// right now, so its temporary files are no error.
func blobFilesWhile(t *testing.T, l blobfs.Layout, writing bool) map[blobfs.Hash][]byte {
	t.Helper()
	out := map[blobfs.Hash][]byte{}
	err := l.Scan(context.Background(), func(e blobfs.Entry) error {
		b, err := os.ReadFile(e.Path)
		if err != nil {
			return err
		}
		if l.Path(e.Hash) != e.Path {
			return fmt.Errorf("%s is not where Stalwart keeps blob %s (%s)", e.Path, e.Hash, l.Path(e.Hash))
		}
		out[e.Hash] = b
		return nil
	}, blobfs.ScanOptions{Foreign: func(f blobfs.Foreign) {
		if !writing || !strings.HasPrefix(filepath.Base(f.Path), ".tailer-tmp-") {
			t.Errorf("not a blob file: %s (%s)", f.Path, f.Why)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
