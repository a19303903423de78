package blobship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/uploader"
)

// DefaultSettle is how long a blob file that does not match its name may
// stay unchanged before the shipper takes it as abandoned (see
// blobfs.Abandoned) rather than still being written.
const DefaultSettle = 10 * time.Minute

// ShipperOptions configure a Shipper. Layout and Replica are required.
type ShipperOptions struct {
	Layout  blobfs.Layout
	Replica uploader.Replica
	// Settle is the completeness rule's settle time (DefaultSettle if 0).
	Settle time.Duration
	// Log receives one warning per abandoned blob and debug records.
	Log *slog.Logger
	// Now is the clock (time.Now if nil); tests replace it.
	Now func() time.Time
}

// Outcome is what Offer did with a blob file.
type Outcome int

const (
	// Uploaded: the file was complete and is now in the replica.
	Uploaded Outcome = iota
	// Present: the replica already holds the blob.
	Present
	// Pending: the file is not complete yet; Offer it again later.
	Pending
	// Abandoned: the file has not matched its name for the settle time;
	// it is offered again only at a full scan.
	Abandoned
	// Gone: the file was removed (purged) before it could be read.
	Gone
	// NotContentAddressed: the file is one of Stalwart's non-hash keys
	// (the spam classifier's model), which this format does not back up.
	NotContentAddressed
)

func (o Outcome) String() string {
	return [...]string{"uploaded", "present", "pending", "abandoned", "gone", "not content addressed"}[o]
}

// Shipper uploads a blob store's complete files, each once. Offer is safe
// for concurrent use.
type Shipper struct {
	opt ShipperOptions
	log *slog.Logger

	mu        sync.Mutex
	have      map[blobfs.Hash]bool // in the replica (listed or uploaded)
	pending   map[blobfs.Hash]blobfs.Entry
	abandoned map[blobfs.Hash]bool // warned about
	enc       *Encoder
}

// NewShipper lists the blobs the replica already holds, so none is
// uploaded twice.
func NewShipper(ctx context.Context, opt ShipperOptions) (*Shipper, error) {
	if opt.Replica == nil {
		return nil, errors.New("blob shipper: no replica")
	}
	if opt.Settle <= 0 {
		opt.Settle = DefaultSettle
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	enc, err := NewEncoder()
	if err != nil {
		return nil, err
	}
	s := &Shipper{opt: opt, log: log, have: map[blobfs.Hash]bool{}, pending: map[blobfs.Hash]blobfs.Entry{}, abandoned: map[blobfs.Hash]bool{}, enc: enc}
	have, err := Listed(ctx, opt.Replica)
	if err != nil {
		return nil, err
	}
	for h := range have {
		s.have[h] = true
	}
	return s, nil
}

// Listed returns the blobs a replica holds (one LIST of blobs/). Keys
// under blobs/ that are not blob keys are left out.
func Listed(ctx context.Context, r uploader.Replica) (map[blobfs.Hash]int64, error) {
	infos, err := r.List(ctx, layout.BlobsRoot)
	if err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	objs := make([]layout.Object, 0, len(infos))
	for _, o := range infos {
		objs = append(objs, layout.Object{Key: o.Key, Size: o.Size, Modified: o.Modified})
	}
	blobs, _ := layout.ParseBlobs(objs)
	out := make(map[blobfs.Hash]int64, len(blobs))
	for _, b := range blobs {
		out[b.Hash] = b.Size
	}
	return out, nil
}

// Has reports whether the replica holds the blob (as far as this shipper
// knows: listed at start or uploaded since).
func (s *Shipper) Has(h blobfs.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.have[h]
}

// PendingCount is the number of blob files seen but not complete yet.
func (s *Shipper) PendingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Offer uploads the blob file e if it is complete and not in the replica
// yet. The file is read once: the bytes verified are the bytes uploaded.
// The error is for reading the file or writing the replica; the blob
// stays pending, to be offered again.
func (s *Shipper) Offer(ctx context.Context, e blobfs.Entry) (Outcome, error) {
	if !e.IsHash {
		return NotContentAddressed, nil
	}
	if s.Has(e.Hash) {
		s.settle(e.Hash, nil)
		return Present, nil
	}
	data, err := os.ReadFile(e.Path)
	if errors.Is(err, os.ErrNotExist) {
		s.settle(e.Hash, nil)
		return Gone, nil
	}
	if err != nil {
		s.settle(e.Hash, &e)
		return Pending, fmt.Errorf("read blob %s: %w", e.Path, err)
	}
	r := blobfs.VerifyBytes(data, e.Hash)
	st, err := os.Stat(e.Path)
	if err != nil {
		s.settle(e.Hash, &e)
		return Pending, nil // gone or unreadable since: the next offer says
	}
	switch r.Ready(st.ModTime(), s.opt.Now(), s.opt.Settle) {
	case blobfs.NotReady:
		s.settle(e.Hash, &e)
		return Pending, nil
	case blobfs.Abandoned:
		s.mu.Lock()
		warned := s.abandoned[e.Hash]
		s.abandoned[e.Hash] = true
		delete(s.pending, e.Hash)
		s.mu.Unlock()
		if !warned {
			s.log.Warn("a blob file has not matched its name for the settle time; not backed up", "path", e.Path, "size", r.Size, "why", r.Why)
		}
		return Abandoned, nil
	}
	s.mu.Lock()
	obj := s.enc.Encode(data)
	s.mu.Unlock()
	key := layout.BlobKey(e.Hash)
	if err := s.opt.Replica.Put(ctx, key, bytes.NewReader(obj), int64(len(obj))); err != nil {
		s.settle(e.Hash, &e)
		return Pending, fmt.Errorf("upload blob %s: %w", key, err)
	}
	s.mu.Lock()
	s.have[e.Hash] = true
	delete(s.pending, e.Hash)
	delete(s.abandoned, e.Hash)
	s.mu.Unlock()
	return Uploaded, nil
}

// settle records e as pending, or (nil) as no longer pending.
func (s *Shipper) settle(h blobfs.Hash, e *blobfs.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e == nil {
		delete(s.pending, h)
		return
	}
	s.pending[h] = *e
}

// RetryPending offers every pending file again and returns how many are
// still pending.
func (s *Shipper) RetryPending(ctx context.Context) (int, error) {
	s.mu.Lock()
	list := make([]blobfs.Entry, 0, len(s.pending))
	for _, e := range s.pending {
		list = append(list, e)
	}
	s.mu.Unlock()
	var first error
	for _, e := range list {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if _, err := s.Offer(ctx, e); err != nil && first == nil {
			first = err
		}
	}
	return s.PendingCount(), first
}

// RunOptions tune Run.
type RunOptions struct {
	// Scan is the full scan interval behind the directory watch.
	Scan time.Duration
	// Retry is how often pending files are offered again (1 s if 0).
	Retry time.Duration
}

// Run ships the blob store until ctx ends: every file already there,
// then each one as Stalwart writes it (blobfs.Watch), retrying pending
// files every Retry. Failures to read or upload are logged and retried;
// Run returns nil when ctx ends.
func (s *Shipper) Run(ctx context.Context, opt RunOptions) error {
	if opt.Retry <= 0 {
		opt.Retry = time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(opt.Retry)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := s.RetryPending(ctx); err != nil && ctx.Err() == nil {
					s.log.Debug("retrying pending blobs", "err", err)
				}
			}
		}
	}()
	err := s.opt.Layout.Watch(ctx, func(e blobfs.Entry) error {
		if _, err := s.Offer(ctx, e); err != nil && ctx.Err() == nil {
			s.log.Warn("shipping a blob failed; retrying", "path", e.Path, "err", err)
		}
		return nil
	}, blobfs.WatchOptions{Every: opt.Scan, Log: s.opt.Log, Foreign: func(f blobfs.Foreign) {
		s.log.Debug("not a blob of the store's layout", "path", f.Path, "why", f.Why)
	}})
	cancel()
	wg.Wait()
	return err
}
