package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/tailer-backup/tailer/changelog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/secondary"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/walpin"
)

// poll is the backstop cycle, every Config.Poll: lineage checks,
// catch-up, the disk and spool guards, a read of the WAL that also
// checks for a gap when nothing arrives, and a periodic export when one
// is due. Batches are captured between polls too, as soon as the WAL
// grows (capture).
func (a *Agent) poll(ctx, expCtx context.Context) error {
	if low, err := a.checkDisk(ctx); err != nil || low {
		a.rewind(a.queued) // what was read is read again once there is room
		return err
	}
	if a.gen != nil && a.newGenWhy == "" {
		if err := a.checkLineage(); err != nil {
			return err
		}
	}
	if a.newGenWhy == "" && a.exportFailed() {
		a.newGenWhy = fmt.Sprintf("the base export of generation %s failed", a.gen.meta.ID)
	}
	if a.newGenWhy != "" || a.gen == nil {
		return a.startGeneration(ctx, expCtx)
	}
	// The batches come from the (pinned) WAL files, read to their last
	// complete record; the secondary only serves the
	// backwards-sequence check, new families and the metrics, so it is
	// caught up every catchUpEvery instead of every poll (its catch-up
	// replays every write into memtables: a fifth of tailer's CPU at full
	// speed, docs/benchmarks.md). The cheap lineage check runs every poll.
	fresh := a.waitFor > 0 || a.cfg.Now().Sub(a.lastCatchUp) >= catchUpEvery
	var err error
	if fresh {
		err = a.sec.CatchUp()
	} else {
		err = a.sec.CheckLineage()
	}
	if err != nil {
		if errors.Is(err, secondary.ErrReplaced) {
			a.newGenWhy = err.Error()
			a.log.Warn("the store was replaced or restored: reopening and starting a new generation", "why", err)
			return a.reopenSecondary()
		}
		return err
	}
	latest := a.sec.LatestSeq()
	if fresh {
		a.lastCatchUp = a.cfg.Now()
		a.m.primaryLatest.Set(float64(latest))
		if a.waitFor > 0 {
			if latest < a.waitFor {
				return nil // the secondary has not yet reached the fresh generation's export
			}
			a.waitFor = 0
		}
		if read := a.cont.want - 1; latest < read {
			a.newGenWhy = fmt.Sprintf("sequence number went backwards (store at %d, read up to %d): the store was restored or replaced", latest, read)
			return nil
		}
	}
	// The WAL files are read every poll, whatever the (possibly stale)
	// secondary says: they are ahead of it.
	if full, err := a.spoolIsFull(); err != nil || full {
		a.rewind(a.queued) // nothing more is sealed until uploads free room
		return err
	}
	if err := a.tail(ctx, latest, true); err != nil {
		return err
	}
	a.releasePins()
	a.m.lastPollOK.SetToCurrentTime()
	a.lastOK.Store(a.cfg.Now().UnixNano())
	return a.maybePeriodicExport(ctx, expCtx)
}

// checkLineage notices a replaced store (new IDENTITY): the secondary is
// reopened on the new files and a new generation starts.
func (a *Agent) checkLineage() error {
	id, err := secondary.ReadIdentity(a.cfg.DB)
	if err != nil {
		return err
	}
	if id == a.gen.meta.DBIdentity {
		return nil
	}
	a.newGenWhy = fmt.Sprintf("DB identity changed from %s to %s: the store was replaced", a.gen.meta.DBIdentity, id)
	return a.reopenSecondary()
}

// reopenSecondary opens a new secondary on the store's directory and
// only then closes the old one, so a store that is missing for a moment
// (being swapped) leaves the agent with a usable instance to retry with.
func (a *Agent) reopenSecondary() error {
	a.flush() // the sealer reads the secondary (blob owners): not while it is replaced
	sec, err := secondary.Open(a.cfg.DB, a.cfg.Scratch)
	if err != nil {
		return fmt.Errorf("reopen the secondary: %w", err)
	}
	a.sec.Close()
	a.sec = sec
	return nil
}

// catchUpEvery is how often the secondary catches up with the primary
// while batches are read from the pinned WAL.
const catchUpEvery = 10 * time.Second

// catchUpRetry is how soon a fresh generation checks again whether the
// secondary reached its export (capture waits for that).
const catchUpRetry = 50 * time.Millisecond

var errNewFamily = errors.New("a batch writes a column family the secondary does not know")

// errRewound stops a read whose position was rewound under it (a seal
// failed while the read waited for a sealing slot).
var errRewound = errors.New("reading position rewound")

// walCursorZero makes the next read find the WAL file by sequence number.
var walCursorZero = walpin.Cursor{}

// HotLevel is the zstd level of the segments tailing seals: the fastest.
// Sealing is on the path from commit to bucket and was half of tailer's
// CPU at full speed; the fastest level with a reused encoder compresses
// about 3.6× faster than a fresh default one, for 7–13% more bytes
// (docs/benchmarks.md, "Segment compression levels"), which compaction
// wins back when it rewrites merged segments at its higher level.
const HotLevel = segment.LevelFastest

// capture reads what the WAL gained since the last read, on a wake-up
// (walwake.go), when tailing is in its steady state; anything else
// (a generation to start, the secondary to reach an export, a full spool
// or disk) waits for the backstop poll.
func (a *Agent) capture(ctx context.Context) error {
	if a.gen == nil || a.newGenWhy != "" || a.waitFor > 0 || a.spoolFull || a.diskLow.Load() {
		return nil
	}
	return a.tail(ctx, 0, false)
}

// tail reads the batches after the last one read and adds them to the
// pending segment, handing it to the sealer whenever it reaches
// MaxSegmentBytes (the sealing rule, sealrule.go, decides the rest).
// backstop says whether this is the periodic poll, the only read that
// counts an empty result towards a gap (latest is the store's newest
// sequence number then).
//
// Batches are read from the pinned copies of the primary's WAL files (or,
// when pinning is off, from the primary's files in place) with tailer's
// own reader, continuing from a cursor, to the last complete record.
// RocksDB's own WAL iterator (GetUpdatesSince) is not used: on a
// secondary it reads batches newer than the secondary's last catch-up,
// which Debian's RocksDB 9.10 (built with assertions) answers with an
// abort under sustained load (transaction_log_impl.cc:278, seen in the
// 10-minute soak), and it cannot see WAL files the primary deleted.
func (a *Agent) tail(ctx context.Context, latest uint64, backstop bool) error {
	families := a.sec.Families()
	known := make(map[uint32]bool, len(families))
	for _, f := range families {
		known[f.ID] = true
	}
	seen := 0
	a.rewound = false
	// Every complete record: the WAL files are ahead of the secondary.
	cur, err := a.pins.Next(ctx, a.walCur, a.cont.want, math.MaxUint64, func(seq uint64, data []byte) error {
		if err := ctx.Err(); err != nil {
			return err // shutting down: a long backlog is not read to its end first
		}
		seen++
		a.m.pinnedBatches.Inc()
		h, err := wbatch.ReadHeader(data)
		if err != nil {
			return fmt.Errorf("WAL batch at seq %d: %w", seq, err)
		}
		want := a.cont.want
		switch a.cont.batch(h) {
		case skip:
			return nil
		case gap:
			return gapError{want: want, got: h.Seq}
		case straddle:
			return straddleError{first: h.Seq, last: h.LastSeq(), read: want - 1}
		}
		if err := checkFamilies(data, known); err != nil {
			a.cont.want = want // not taken
			return err
		}
		a.pend.add(segment.Batch{Seq: h.Seq, CaptureUnixMs: a.cfg.Now().UnixMilli(), Data: data}, a.cfg.Now(), a.gen, families)
		if a.pend.bytes >= a.cfg.MaxSegmentBytes && !a.cut() {
			return errRewound
		}
		return nil
	})
	switch {
	case a.rewound || errors.Is(err, errRewound):
		return nil // reading starts again after the last sealed batch
	case errors.Is(err, walpin.ErrNotPinned):
		err = gapError{want: a.cont.want}
	}
	if err != nil {
		a.walCur = walCursorZero // re-find by sequence number next time
	} else {
		a.walCur = cur
	}
	a.wake.at(a.walCur.File, a.walCur.Offset)
	if seen > 0 {
		a.cont.emptyPolls = 0
	}
	if err == nil && backstop && a.cont.poll(seen, latest) {
		// The store is ahead of what was read but no WAL file holds a
		// batch at or after it: the primary deleted it (or is switching
		// files, for a moment, hence several polls).
		err = gapError{want: a.cont.want}
	}
	var gap gapError
	switch {
	case errors.As(err, &gap):
		a.m.gaps.Inc()
		a.newGenWhy = gap.Error()
		a.log.Warn("gap in the WAL: starting a new generation with a full export", "why", gap.Error())
		return nil
	case errors.Is(err, errNewFamily):
		a.log.Info("the primary created a column family; reopening the secondary")
		return a.reopenSecondary()
	}
	return err
}

// checkFamilies makes sure every record of a batch names a family in the
// table the segment will carry, so restore can always map it to a name.
func checkFamilies(data []byte, known map[uint32]bool) error {
	return wbatch.Each(data, func(r wbatch.Record) error {
		if r.Op.Counted() && !known[r.CF] {
			return fmt.Errorf("%w (id %d)", errNewFamily, r.CF)
		}
		return nil
	})
}

// sealSegment writes a job's batches into one segment in the spool and
// queues it. It runs on the sealer's goroutine (sealer.go), so it reads
// nothing of the tailing state but the job.
func (a *Agent) sealSegment(ctx context.Context, j sealJob) error {
	batches, families := j.batches, j.families
	first, last := batches[0].Seq, j.last
	key := layout.SegmentKey(j.gen.meta.ID, first, last)
	if a.blobs != nil {
		// Until the segment is queued, no round of blob deletion opens
		// (blobgc.go): it counts the segment as a reference.
		defer a.blobs.hold()()
		// The blobs committed in these batches go first: a replica never
		// holds the segment without them.
		needs, err := a.committed(batches, families)
		if err == nil {
			err = a.blobs.ensure(ctx, needs, key, false)
		}
		if err != nil {
			return fmt.Errorf("seal segment %s: %w", key, err)
		}
	}
	hdr := segment.Header{
		Kind: segment.KindSegment, Generation: j.gen.meta.ID, DBIdentity: j.gen.meta.DBIdentity,
		FirstSeq: first, LastSeq: last, Created: a.cfg.Now().UTC(), Families: families,
		Compression: segment.CompressionZstd,
	}
	lbl, err := a.label(batches, families)
	if err == nil {
		err = a.publish(key, func(f io.Writer) error {
			w, err := segment.NewSegmentWriter(f, hdr, segment.WithLevel(HotLevel), segment.WithEncoders(&a.encoders))
			if err != nil {
				return err
			}
			w.SetLabels(lbl)
			for _, b := range batches {
				if err := w.Append(b); err != nil {
					return err
				}
			}
			_, err = w.Close()
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("seal segment %s: %w", key, err)
	}
	raw := 0
	for _, b := range batches {
		raw += len(b.Data)
	}
	a.m.segments.Inc()
	a.m.batches.Add(float64(len(batches)))
	a.m.batchBytes.Add(float64(raw))
	a.log.Debug("sealed segment", "key", key, "batches", len(batches), "bytes", raw)
	return nil
}

// label reads the changelog (`l`) records of the batches: the segment's
// labels (per account and collection, the lowest and highest Stalwart
// change id) let restore find a change or a time without downloading
// every segment. Changes are counted per collection for the metrics;
// what cannot be decoded is counted and logged, never fatal.
func (a *Agent) label(batches []segment.Batch, families []segment.Family) ([]segment.ChangeLabel, error) {
	lID, _ := changelog.FamilyID(families)
	lb := changelog.NewLabeler(lID)
	for _, b := range batches {
		if err := lb.Add(b); err != nil {
			return nil, fmt.Errorf("changelog of batch %d: %w", b.Seq, err)
		}
		changes, _, _, err := changelog.Scan(b, lID)
		if err != nil {
			return nil, fmt.Errorf("changelog of batch %d: %w", b.Seq, err)
		}
		for _, c := range changes {
			a.m.changes.WithLabelValues(c.Collection.String()).Inc()
		}
	}
	if st := lb.Stats(); st.Malformed > 0 || st.UnknownCollections > 0 {
		a.m.changelogUndecoded.Add(float64(st.Malformed + st.UnknownCollections))
		a.log.Warn("changelog entries tailer could not decode (shipped as is)", "malformed", st.Malformed, "unknown_collections", st.UnknownCollections)
	}
	return lb.Labels(), nil
}

// releasePins drops WAL pins whose batches are all sealed, and reports
// what the pins hold.
func (a *Agent) releasePins() {
	if _, err := a.pins.Release(a.lastShipped); err != nil {
		a.log.Warn("releasing WAL pins failed", "err", err)
	}
	files, bytes := a.pins.Stats()
	a.m.pinFiles.Set(float64(files))
	a.m.pinBytes.Set(float64(bytes))
}

// spoolIsFull applies SpoolMaxBytes to every replica's spool. A replica
// whose spool is full is detached (loudly): others keep receiving, and a
// new generation re-includes it once its spool has drained. When the last
// attached replica is full, sealing pauses instead (nothing is dropped:
// the WAL pins keep the batches). It reports whether sealing must pause.
func (a *Agent) spoolIsFull() (bool, error) {
	if a.cfg.SpoolMaxBytes <= 0 {
		return false, nil
	}
	for _, t := range a.targets {
		n, err := t.spool.Bytes()
		if err != nil {
			return false, fmt.Errorf("measure spool of %s: %w", t.r, err)
		}
		switch {
		case t.detached && n == 0 && a.newGenWhy == "":
			a.newGenWhy = fmt.Sprintf("replica %s caught up after its spool filled; a new generation brings it back in step", t.r)
		case !t.detached && n >= a.cfg.SpoolMaxBytes && len(a.attached()) > 1:
			a.expMu.Lock()
			t.detached = true
			a.expMu.Unlock()
			a.m.detached.Inc()
			a.log.Error("REPLICA DETACHED: its spool reached --spool-max-bytes; the other replicas keep receiving, and a new generation re-includes it once its bucket has taken what is queued",
				"replica", t.r.String(), "spool_bytes", n, "spool_max_bytes", a.cfg.SpoolMaxBytes)
		}
	}
	var worst int64 = -1
	for _, t := range a.attached() {
		n, err := t.spool.Bytes()
		if err != nil {
			return false, err
		}
		if n < a.cfg.SpoolMaxBytes {
			worst = -1
			break
		}
		worst = n
	}
	full := worst >= 0
	if full != a.spoolFull {
		a.spoolFull = full
		a.spoolPaused.Store(full)
		if full {
			a.m.spoolFull.Set(1)
			a.log.Error("SPOOL FULL: the replica is not taking uploads and the spool reached --spool-max-bytes; tailer stops sealing new segments (nothing is dropped: the WAL pins keep the batches, a gap would start a new generation) until uploads free room",
				"spool_bytes", worst, "spool_max_bytes", a.cfg.SpoolMaxBytes, "last_shipped_seq", a.lastShipped)
		} else {
			a.m.spoolFull.Set(0)
			a.log.Info("spool has room again: sealing resumes")
		}
	}
	return full, nil
}
