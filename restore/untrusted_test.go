package restore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// Bucket objects are untrusted input: whoever can write the bucket can
// plant keys and objects. These tests plant them in a real replica.

// plantedReplica is a replica with extra objects under keys the file
// backend cannot store (S3 stores any key, ".." included).
type plantedReplica struct {
	uploader.Replica
	extra map[string][]byte
}

func (p plantedReplica) List(ctx context.Context, prefix string) ([]uploader.ObjectInfo, error) {
	out, err := p.Replica.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	for k, b := range p.extra {
		if strings.HasPrefix(k, prefix) {
			out = append(out, uploader.ObjectInfo{Key: k, Size: int64(len(b))})
		}
	}
	slices.SortFunc(out, func(a, b uploader.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (p plantedReplica) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if b, ok := p.extra[key]; ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return p.Replica.Get(ctx, key)
}

// TestRestoreIgnoresUncanonicalKeys: a segment listed under a key with
// ".." (the reviewer's "generations/G/segments/../../../../tmp/x/<name>")
// is not a tailer object: restore leaves it alone, creates nothing outside
// its work directory, and restores from the canonical objects only.
func TestRestoreIgnoresUncanonicalKeys(t *testing.T) {
	r := replicatest.Build(t, damageSpec)
	last := r.Segments[len(r.Segments)-1]
	good := r.Read(t, last.Key)
	r.Delete(t, last.Key) // only the planted copy holds the newest batches
	base := t.TempDir()
	work := filepath.Join(base, "a", "work")
	escape := filepath.Join(base, "a", "escape") // where work/<key> points
	name := last.Key[strings.LastIndexByte(last.Key, '/')+1:]
	hostile := "generations/" + r.Generation + "/segments/../../../../escape/x/" + name
	rep := plantedReplica{r.R, map[string][]byte{
		hostile: good,
		"generations/" + r.Generation + "/segments/./" + name: good,
	}}

	_, unknown, err := catalog.List(context.Background(), rep, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(unknown, hostile) {
		t.Errorf("catalog does not report %s as not a tailer object: unknown = %v", hostile, unknown)
	}
	to := filepath.Join(base, "restored")
	res, err := Run(context.Background(), Options{Replica: rep, To: to, Work: work, Digests: true})
	if _, serr := os.Stat(escape); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("restore created %s outside its work directory %s (stat: %v)", escape, work, serr)
	}
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if want := r.Segments[len(r.Segments)-2].Last; res.Seq != want {
		t.Errorf("restored at %d, want %d (the planted segment must not be used)", res.Seq, want)
	}
	sameState(t, res.Families, r.StateAt(t, res.Seq))
}

// TestRestoreBoundsMemoryOnHostileObject: a small segment whose zstd body
// (RLE blocks) decompresses to a huge batch that its trailer vouches for
// made restore allocate gigabytes (the reviewer's 112 KiB object, 6.3
// GiB). Through the real path (LIST, download, verify), restore must
// refuse it as corrupt, naming it, and allocate little.
func TestRestoreBoundsMemoryOnHostileObject(t *testing.T) {
	r := replicatest.Build(t, damageSpec)
	last := r.Segments[len(r.Segments)-1]
	const zeros = 256 << 20
	obj := replicatest.Inflate(t, r.Read(t, last.Key), last.First, zeros)
	r.Replace(t, last.Key, obj)
	t.Logf("planted a %d-byte segment stating a batch of %d MiB", len(obj), zeros>>20)

	to := filepath.Join(t.TempDir(), "restored")
	var err error
	n := allocated(func() {
		_, err = Run(context.Background(), Options{Replica: r.R, To: to})
	})
	if err == nil || !strings.Contains(err.Error(), segment.ErrCorrupt.Error()) || !strings.Contains(err.Error(), last.Key) {
		t.Errorf("restore: err = %v, want it to say %s is corrupt", err, last.Key)
	}
	if bound := uint64(64 << 20); n > bound {
		t.Errorf("restore allocated %d MiB, more than %d MiB, for a %d-byte object", n>>20, bound>>20, len(obj))
	}
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
