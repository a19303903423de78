package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
)

// blobRetry is how often files seen but not complete (or not queued
// while backups were paused) are looked at again.
const blobRetry = time.Second

// blobs ships a filesystem blob store (Config.Blobs) through the spool,
// beside the segments: every complete, verified file once, as blobship's
// object under layout.BlobKey, queued before any segment or export that
// references it, so that a replica never holds a point whose blobs are
// not queued before it (the spool uploads in queue order).
//
// Three paths queue blobs, all through queue (under mu, so a blob is
// read and queued once): the directory watch, as Stalwart writes files;
// the sealing of a segment, for every commit key in it the watch has not
// shipped yet; an export, for every blob the store references at its
// sequence number.
type blobs struct {
	a      *Agent
	layout blobfs.Layout
	settle time.Duration

	mu  sync.Mutex
	enc *blobship.Encoder
	// known holds, per replica, the blobs it holds or that are queued for
	// it: listed once at start, then added to as blobs are queued.
	known map[*target]map[blobfs.Hash]struct{}
	// pending are files seen that could not be queued yet: not complete,
	// or backups were paused (disk guard, full spool).
	pending   map[blobfs.Hash]blobfs.Entry
	missing   map[blobfs.Hash]bool // reported missing (counted once each)
	abandoned map[blobfs.Hash]bool // warned about
	foreign   map[string]bool      // non-hash keys, noted once each

	// sealMu and gc coordinate with retention's deletion of blob
	// objects (blobgc.go); gc is guarded by mu.
	sealMu sync.RWMutex
	gc     map[*target]map[blobfs.Hash]bool

	stop func() // stops the watch and the retries
}

// newBlobs prepares the shipping of the blob store in cfg; it lists
// nothing yet (start does).
func newBlobs(a *Agent) (*blobs, error) {
	l, err := blobfs.NewLayout(a.cfg.Blobs, *a.cfg.BlobDepth)
	if err != nil {
		return nil, err
	}
	enc, err := blobship.NewEncoder()
	if err != nil {
		return nil, err
	}
	return &blobs{a: a, layout: l, settle: blobship.DefaultSettle, enc: enc,
		known: map[*target]map[blobfs.Hash]struct{}{}, pending: map[blobfs.Hash]blobfs.Entry{},
		missing: map[blobfs.Hash]bool{}, abandoned: map[blobfs.Hash]bool{}, foreign: map[string]bool{},
		gc: map[*target]map[blobfs.Hash]bool{}}, nil
}

// list learns what every replica holds (one LIST of blobs/ each, plus
// the blob objects still in its spool). It runs before the uploaders
// start: a blob object left in the spool by a tailer killed after its
// upload but before its removal from the spool is already in the bucket
// (objects appear whole, and a blob's key names its content), so it is
// dropped from the spool instead of being uploaded a second time.
func (b *blobs) list(ctx context.Context) error {
	total, dropped := 0, 0
	for _, t := range b.a.targets {
		held, err := blobship.Listed(ctx, t.r)
		if err != nil {
			return fmt.Errorf("replica %s: %w", t.r, err)
		}
		set := make(map[blobfs.Hash]struct{}, len(held))
		for h := range held {
			set[h] = struct{}{}
		}
		queued, err := t.spool.Pending()
		if err != nil {
			return fmt.Errorf("read spool: %w", err)
		}
		for _, e := range queued {
			h, ok := layout.ParseBlobKey(e.Key)
			if !ok {
				continue
			}
			if _, in := held[h]; in {
				if err := t.spool.Remove(e); err != nil {
					return err
				}
				dropped++
				continue
			}
			set[h] = struct{}{}
		}
		b.mu.Lock()
		b.known[t] = set
		b.mu.Unlock()
		total += len(set)
	}
	b.a.log.Info("backing up the filesystem blob store", "dir", b.layout.Root, "depth", b.layout.Levels,
		"blobs_in_replicas_or_spools", total, "spooled_blobs_already_uploaded", dropped, "scan_interval", b.a.cfg.BlobScanInterval)
	return nil
}

// start scans the blob store once, then watches it until halt.
func (b *blobs) start(ctx context.Context) error {
	// One full scan before anything else (the first generation's export
	// above all), so that what is on disk now is queued before Stalwart's
	// purge can delete it; the watch then takes over.
	began := time.Now()
	files := 0
	err := b.layout.Scan(ctx, func(e blobfs.Entry) error { files++; b.offer(e); return nil }, blobfs.ScanOptions{})
	if err != nil {
		return fmt.Errorf("scan the blob store: %w", err)
	}
	b.a.log.Info("blob store scanned", "dir", b.layout.Root, "files", files, "pending", len(b.pending), "took", time.Since(began).Round(time.Millisecond))
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		err := b.layout.Watch(ctx, func(e blobfs.Entry) error { b.offer(e); return nil }, blobfs.WatchOptions{
			Every: b.a.cfg.BlobScanInterval, Log: b.a.log,
			Foreign: func(f blobfs.Foreign) {
				b.a.log.Debug("not a blob of the store's layout; left alone", "path", f.Path, "why", f.Why)
			},
		})
		if err != nil {
			b.a.log.Error("watching the blob store stopped; new blobs are queued only with the segments and exports that reference them", "dir", b.layout.Root, "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(blobRetry)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				b.retry()
			}
		}
	}()
	b.stop = func() { cancel(); wg.Wait() }
	return nil
}

// halt stops the watch and the retries (before the spool is drained).
func (b *blobs) halt() {
	if b.stop != nil {
		b.stop()
		b.stop = nil
	}
}

// needing returns the attached replicas that neither hold nor have
// queued h. Called with mu held.
func (b *blobs) needing(h blobfs.Hash) []*target {
	var out []*target
	for _, t := range b.a.attached() {
		if _, ok := b.known[t][h]; !ok {
			out = append(out, t)
		}
	}
	return out
}

// paused reports whether backups are paused: the disk guard or a full
// spool. The watch then only notes files, to queue them later.
func (b *blobs) paused() bool { return b.a.diskLow.Load() || b.a.spoolPaused.Load() }

// offer is the watch's callback: queue a complete file not yet known,
// note an incomplete one to look at again.
func (b *blobs) offer(e blobfs.Entry) {
	if !e.IsHash {
		b.mu.Lock()
		first := !b.foreign[e.Name()]
		b.foreign[e.Name()] = true
		b.mu.Unlock()
		if first {
			b.a.log.Info("a file of the blob store is not a mail blob (not named for a content hash: the spam classifier's model or a web application bundle); not backed up", "path", e.Path)
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.a.m.blobsPending.Set(float64(len(b.pending)))
	ts := b.needing(e.Hash)
	if len(ts) == 0 {
		delete(b.pending, e.Hash)
		return
	}
	if b.paused() {
		b.pending[e.Hash] = e
		return
	}
	f, err := blobship.OpenFile(e.Path, e.Hash)
	switch {
	case errors.Is(err, os.ErrNotExist):
		delete(b.pending, e.Hash) // purged; a commit key seen later reports it
		return
	case err != nil:
		b.pending[e.Hash] = e
		b.a.log.Debug("a blob file could not be read; retrying", "path", e.Path, "err", err)
		return
	}
	defer f.Close()
	switch f.Result.Ready(f.ModTime, b.a.cfg.Now(), b.settle) {
	case blobfs.NotReady:
		b.pending[e.Hash] = e
		return
	case blobfs.Abandoned:
		delete(b.pending, e.Hash)
		if !b.abandoned[e.Hash] {
			b.abandoned[e.Hash] = true
			b.a.log.Warn("a blob file has not matched its name for the settle time; not backed up unless a segment or export references it", "path", e.Path, "size", f.Result.Size, "why", f.Result.Why)
		}
		return
	}
	if err := b.queue(ts, e.Hash, f); err != nil {
		b.pending[e.Hash] = e
		b.a.log.Warn("queueing a blob failed; retrying", "blob", e.Hash.Name(), "err", err)
	}
}

// retry offers the pending files again.
func (b *blobs) retry() {
	if b.paused() {
		return
	}
	b.mu.Lock()
	list := make([]blobfs.Entry, 0, len(b.pending))
	for _, e := range b.pending {
		list = append(list, e)
	}
	b.mu.Unlock()
	for _, e := range list {
		b.offer(e)
	}
}

// queue writes the object of a verified file into the spools of ts.
// Called with mu held.
func (b *blobs) queue(ts []*target, h blobfs.Hash, f *blobship.File) error {
	err := publishTo(ts, layout.BlobKey(h), func(w io.Writer) error { return f.WriteObject(b.enc, w) })
	if err != nil {
		return err
	}
	for _, t := range ts {
		b.known[t][h] = struct{}{}
	}
	b.noteRef(h)
	delete(b.pending, h)
	delete(b.abandoned, h)
	if b.missing[h] {
		delete(b.missing, h)
		b.a.log.Warn("a blob reported missing was found complete since and is now backed up", "blob", h.Name())
	}
	b.a.m.blobsShipped.Inc()
	b.a.m.blobBytes.Add(float64(f.Result.Size))
	return nil
}

// need is a blob a segment or an export references; owner names who
// holds it, for a report (nil: unknown).
type need struct {
	hash  blobfs.Hash
	owner func() string
}

// ensure makes sure every blob of needs is in each attached replica or
// queued for it, reading and queueing those that are not, before the
// caller queues the object that references them (what names it in
// reports). A blob whose file is gone or does not verify is reported
// (ERROR, tailer_blobs_missing_total) and does not stop the caller: a
// point is not made unrestorable by one purged blob. The error is for the
// spool only.
//
// With wait (an export, which may reference every blob of the store) it
// also keeps to SpoolMaxBytes: while a spool is at its cap it waits for
// uploads to free room rather than fill the disk.
func (b *blobs) ensure(ctx context.Context, needs []need, what string, wait bool) error {
	for i, n := range needs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if wait && i%spoolCheckEvery == 0 {
			if err := b.waitForRoom(ctx, what); err != nil {
				return err
			}
		}
		if err := b.ensureOne(n, what); err != nil {
			return err
		}
	}
	return nil
}

func (b *blobs) ensureOne(n need, what string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.a.m.blobsPending.Set(float64(len(b.pending)))
	b.noteRef(n.hash) // referenced, whether queued now or held already
	ts := b.needing(n.hash)
	if len(ts) == 0 {
		return nil
	}
	path := b.layout.Path(n.hash)
	f, err := blobship.OpenFile(path, n.hash)
	switch {
	case errors.Is(err, os.ErrNotExist):
		b.reportMissing(n, what, "its file is gone: Stalwart's purge deleted it before tailer could copy it", path)
		return nil
	case err != nil:
		b.reportMissing(n, what, err.Error(), path)
		return nil
	}
	defer f.Close()
	if f.Result.Status != blobfs.Complete {
		// Stalwart writes the commit key after the file: this one is
		// damaged, or rewritten. The watch ships it should it complete.
		b.pending[n.hash] = blobfs.Entry{Key: n.hash[:], Hash: n.hash, IsHash: true, Path: path, ModTime: f.ModTime}
		b.reportMissing(n, what, "its file does not match its hash: "+f.Result.Why, path)
		return nil
	}
	return b.queue(ts, n.hash, f)
}

// reportMissing says, loudly, that a referenced blob cannot be backed up.
// Called with mu held.
func (b *blobs) reportMissing(n need, what, why, path string) {
	owner := "unknown (no link of it found)"
	if n.owner != nil {
		owner = n.owner()
	}
	if !b.missing[n.hash] {
		b.missing[n.hash] = true
		b.a.m.blobsMissing.Inc()
	}
	b.a.log.Error("BLOB MISSING: the store references a blob tailer could not back up; a restore of this point lacks that message's content",
		"blob", n.hash.Name(), "owner", owner, "why", why, "path", path, "referenced_by", what)
}

// committed returns the blobs whose commit key the batches put (family
// k), in order, each once, with the owner named by a document or
// temporary link in the same batches or, failing that, by the
// secondary's family k.
func (a *Agent) committed(batches []segment.Batch, families []segment.Family) ([]need, error) {
	kID, ok := uint32(0), false
	for _, f := range families {
		if f.Name == bloblink.Family {
			kID, ok = f.ID, true
		}
	}
	if !ok {
		return nil, nil
	}
	var order []blobfs.Hash
	commits := map[blobfs.Hash]bool{}
	owners := map[blobfs.Hash]string{}
	for _, bt := range batches {
		err := wbatch.Each(bt.Data, func(r wbatch.Record) error {
			if r.CF != kID || r.Op != wbatch.OpPut {
				return nil
			}
			l, err := bloblink.ParseKey(r.Key)
			if err != nil {
				return nil // a key of another shape: not a commit
			}
			switch l.Kind {
			case bloblink.Commit:
				if !commits[l.Hash] {
					commits[l.Hash] = true
					order = append(order, l.Hash)
				}
			case bloblink.Document, bloblink.Temporary:
				if _, ok := owners[l.Hash]; !ok || l.Kind == bloblink.Document {
					var rc bloblink.Collector
					rc.Add(r.Key)
					owners[l.Hash] = rc.Refs()[0].OwnerString()
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("blob links of batch %d: %w", bt.Seq, err)
		}
	}
	out := make([]need, 0, len(order))
	for _, h := range order {
		out = append(out, need{hash: h, owner: func() string {
			if o, ok := owners[h]; ok {
				return o
			}
			if r, ok, err := bloblink.Lookup(a.sec.Store(), nil, h); err == nil && ok {
				return r.OwnerString()
			}
			return "unknown (no link of it in the segment nor in the store)"
		}})
	}
	return out, nil
}

// exportBlobs ensures the blobs the frozen store references at seq are
// in the replicas or queued, then queues the export's blob manifest, so
// the export that follows counts as complete only with its blobs.
func (a *Agent) exportBlobs(ctx context.Context, gen string, seq uint64, st *store.Store, at time.Time) error {
	refs, _, err := bloblink.Read(ctx, st, nil)
	if err != nil {
		return fmt.Errorf("blob links of the export at %d: %w", seq, err)
	}
	now := uint64(at.Unix())
	var needs []need
	var hashes []blobfs.Hash
	for _, r := range refs {
		if !r.Required(now) {
			continue
		}
		hashes = append(hashes, r.Hash)
		needs = append(needs, need{hash: r.Hash, owner: r.OwnerString})
	}
	key := layout.BlobManifestKey(gen, seq)
	defer a.blobs.hold()() // until the manifest is queued: see blobgc.go
	if err := a.blobs.ensure(ctx, needs, layout.ExportKey(gen, seq), true); err != nil {
		return err
	}
	manifest, err := blobship.EncodeManifest(hashes)
	if err != nil {
		return fmt.Errorf("blob manifest %s: %w", key, err)
	}
	if err := a.publish(key, func(w io.Writer) error { _, err := w.Write(manifest); return err }); err != nil {
		return fmt.Errorf("spool %s: %w", key, err)
	}
	a.log.Info("blob manifest queued", "key", key, "blobs", len(hashes))
	return nil
}

// spoolCheckEvery is how many blobs an export queues between two looks
// at the spool's size (each lists the spool directory).
const spoolCheckEvery = 64

// waitForRoom waits while an attached replica's spool is at
// SpoolMaxBytes, until uploads free room or ctx ends.
func (b *blobs) waitForRoom(ctx context.Context, what string) error {
	if b.a.cfg.SpoolMaxBytes <= 0 {
		return nil
	}
	logged := false
	for {
		full := false
		for _, t := range b.a.attached() {
			n, err := t.spool.Bytes()
			if err != nil {
				return fmt.Errorf("measure spool of %s: %w", t.r, err)
			}
			full = full || n >= b.a.cfg.SpoolMaxBytes
		}
		if !full {
			return nil
		}
		if !logged {
			logged = true
			b.a.log.Warn("the spool reached --spool-max-bytes while an export queues its blobs; waiting for uploads to free room", "export", what, "spool_max_bytes", b.a.cfg.SpoolMaxBytes)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(blobRetry):
		}
	}
}
