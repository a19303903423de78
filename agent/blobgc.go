package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/retention"
)

// Deleting blob objects is coordinated with the shipping of blobs
// (retention.BlobGuard): the agent's known set says which blobs a replica
// holds, and a blob retention deletes must leave it, or the agent would
// never upload it again when Stalwart stores the same content anew; and a
// segment or export still in the spool references blobs the bucket's
// listing does not show as referenced.
//
// While a round of blob deletion is open for a replica (gc[t] set), every
// blob the agent references for it (ensureOne, queue) is noted; the round
// opens under the write side of sealMu, which every seal and export holds
// (read side) from the check of its blobs until its object is queued, so
// what was queued before the round is in the spool when the round reads
// it, or already uploaded and so in retention's listing that follows.
// The deletion itself runs under mu, which every check of known takes:
// a blob is deleted only if nothing referenced it since the round opened,
// and leaves known in the same step.

// gcWait bounds how long a round of blob deletion waits for the seals
// and exports queueing blobs to pause; gcPoll is how often it looks.
const (
	gcWait = time.Minute
	gcPoll = 10 * time.Millisecond
)

// errSealBusy is returned when blobs were being queued for all of gcWait.
var errSealBusy = errors.New("an export kept queueing blobs; blob objects are left for the next round")

// hold keeps blob deletion from opening a round while a seal or an export
// checks its blobs and queues the object referencing them.
func (b *blobs) hold() func() {
	b.sealMu.RLock()
	return b.sealMu.RUnlock
}

// noteRef records h as referenced in every open round. Called with mu held.
func (b *blobs) noteRef(h blobfs.Hash) {
	for _, refs := range b.gc {
		refs[h] = true
	}
}

// guard returns the retention.BlobGuard of replica t.
func (b *blobs) guard(t *target) retention.BlobGuard { return &blobGuard{b: b, t: t} }

// blobGuard is one replica's retention.BlobGuard.
type blobGuard struct {
	b *blobs
	t *target
}

// BeginBlobGC opens the round and returns what t's spool references.
func (g *blobGuard) BeginBlobGC(ctx context.Context) (map[blobfs.Hash]bool, error) {
	// TryLock, not Lock: a waiting writer would stop new seals, and an
	// export may hold the read side long (waiting for room in the spool).
	// Seals are short, so a gap between two comes soon; an export that
	// holds on is waited for until gcWait, then this round leaves blobs.
	deadline := time.Now().Add(gcWait)
	for !g.b.sealMu.TryLock() {
		if time.Now().After(deadline) {
			return nil, errSealBusy
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(gcPoll):
		}
	}
	g.b.mu.Lock()
	g.b.gc[g.t] = map[blobfs.Hash]bool{}
	g.b.mu.Unlock()
	g.b.sealMu.Unlock()
	refs, err := spoolRefs(ctx, g.t)
	if err != nil {
		g.EndBlobGC()
		return nil, fmt.Errorf("replica %s: %w", g.t.r, err)
	}
	return refs, nil
}

// DeleteBlobs runs decide under mu and forgets the blobs it deleted.
func (g *blobGuard) DeleteBlobs(ctx context.Context, decide func(referenced func(blobfs.Hash) bool) ([]blobfs.Hash, error)) error {
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	refs := g.b.gc[g.t]
	tried, err := decide(func(h blobfs.Hash) bool { return refs[h] })
	for _, h := range tried {
		delete(g.b.known[g.t], h)
	}
	if len(tried) > 0 {
		g.b.a.log.Info("blob objects deleted by retention are no longer counted as held by the replica; one referenced again is uploaded again",
			"replica", g.t.r.String(), "blobs", len(tried))
	}
	return err
}

// EndBlobGC closes the round.
func (g *blobGuard) EndBlobGC() {
	g.b.mu.Lock()
	delete(g.b.gc, g.t)
	g.b.mu.Unlock()
}

// spoolRefs returns the blobs t's spool references: its blob objects, the
// blobs its segments commit and its blob manifests list. An entry gone
// while it is read was uploaded meanwhile.
func spoolRefs(ctx context.Context, t *target) (map[blobfs.Hash]bool, error) {
	entries, err := t.spool.Pending()
	if err != nil {
		return nil, err
	}
	out := map[blobfs.Hash]bool{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if h, ok := layout.ParseBlobKey(e.Key); ok {
			out[h] = true
			continue
		}
		isSeg := strings.HasSuffix(e.Key, ".tseg")
		if !isSeg && !strings.HasSuffix(e.Key, layout.BlobManifestSuffix) {
			continue
		}
		err := spooledRefs(e.Path, e.Key, isSeg, out)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("blobs referenced by %s in the spool: %w", e.Key, err)
		}
	}
	return out, nil
}

// spooledRefs adds the blobs of one spooled segment or manifest to out.
func spooledRefs(path, key string, isSeg bool, out map[blobfs.Hash]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if isSeg {
		return retention.SegmentCommits(f, fi.Size(), key, out)
	}
	data, err := io.ReadAll(io.LimitReader(f, blobship.MaxManifestBytes+1))
	if err != nil {
		return err
	}
	hs, err := blobship.DecodeManifest(data)
	if err != nil {
		return err
	}
	for _, h := range hs {
		out[h] = true
	}
	return nil
}
