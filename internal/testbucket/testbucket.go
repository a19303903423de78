// Package testbucket writes small but real generations into a replica for
// the tests of retention and compaction: a generation.json, exports whose
// trailers carry true digests, and segments of genuine RocksDB WriteBatches
// (puts, merges on Stalwart's counter family, changelog entries that give
// real labels), with capture times the test chooses. Hand-built data lets a
// test place segments at exact times, leave holes and stack generations,
// which a live agent cannot be made to do on cue, while restore still
// replays every byte through RocksDB.
//
// It also keeps a model of the source store, so a test can compare a
// restore with the state the primary had at any sequence number.
package testbucket

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tailer-backup/tailer/changelog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// Families is the source store's column-family table: a counter family
// with Stalwart's merge operator, a plain one and the changelog.
var Families = []segment.Family{
	{ID: 0, Name: "default"},
	{ID: 1, Name: "n", MergeOperator: stalwart.MergeOperatorName},
	{ID: 2, Name: "p"},
	{ID: 3, Name: "l"},
}

// batchCount is the number of sequence numbers each batch consumes: a put
// in p, a merge in n and a changelog put in l.
const batchCount = 3

// Segment says how to build one segment.
type Segment struct {
	Batches int           // number of batches (at least 1)
	Capture time.Time     // capture time of the first batch
	Step    time.Duration // between the capture times of consecutive batches
	// Missing builds the segment (its sequence numbers are used) but does
	// not upload it: a hole in the chain.
	Missing bool
	// ExportAfter uploads an export at the segment's last sequence number,
	// created ExportDelay after the segment's last capture (default 1 ms).
	ExportAfter bool
	ExportDelay time.Duration
}

// Generation says how to build one generation.
type Generation struct {
	ID       string
	Identity string    // DB identity (default "identity-<ID>")
	Created  time.Time // generation.json and base export time
	BaseSeq  uint64    // sequence number of the base export (default 100)
	Account  uint32    // account whose changes the batches write (default 1)
	Segments []Segment
	// NoExport skips the base export: a generation whose export never
	// finished.
	NoExport bool
}

// Built is what Build wrote.
type Built struct {
	ID       string
	Meta     string
	Exports  []layout.Export
	Segments []layout.Segment // uploaded ones, in order
	Missing  []layout.Segment // built but not uploaded
	// States maps a sequence number at a batch boundary (the base export's
	// and every batch's last) to the per-family sums the source store had
	// then, in Families order.
	States map[uint64][]segment.FamilySum
	// Last is the newest sequence number written (uploaded or not).
	Last uint64
}

// model is the source store's state: family name -> key -> value.
type model map[string]map[string][]byte

func (m model) apply(data []byte) error {
	return wbatch.Each(data, func(r wbatch.Record) error {
		name := Families[r.CF].Name
		fam := m[name]
		if fam == nil {
			fam = map[string][]byte{}
			m[name] = fam
		}
		switch r.Op {
		case wbatch.OpPut:
			fam[string(r.Key)] = bytes.Clone(r.Value)
		case wbatch.OpMerge:
			var cur int64
			if old, ok := fam[string(r.Key)]; ok {
				cur = int64(binary.LittleEndian.Uint64(old))
			}
			cur += int64(binary.LittleEndian.Uint64(r.Value))
			fam[string(r.Key)] = stalwart.EncodeCounter(cur)
		default:
			return fmt.Errorf("testbucket model: unexpected op %v", r.Op)
		}
		return nil
	})
}

func (m model) sums() []segment.FamilySum {
	out := make([]segment.FamilySum, 0, len(Families))
	for _, f := range Families {
		d := segment.NewDigest()
		keys := slices.Sorted(maps.Keys(m[f.Name]))
		for _, k := range keys {
			d.Add([]byte(k), m[f.Name][k])
		}
		out = append(out, segment.FamilySum{Name: f.Name, Keys: d.Keys(), Digest: d.Sum()})
	}
	return out
}

// Build writes g into r and returns what it wrote.
func Build(ctx context.Context, r uploader.Replica, g Generation) (Built, error) {
	if g.Identity == "" {
		g.Identity = "identity-" + g.ID
	}
	if g.BaseSeq == 0 {
		g.BaseSeq = 100
	}
	if g.Account == 0 {
		g.Account = 1
	}
	b := Built{ID: g.ID, Meta: layout.MetaKey(g.ID), States: map[uint64][]segment.FamilySum{}}
	meta, err := layout.EncodeMeta(layout.Meta{ID: g.ID, Created: g.Created.UTC(), Reason: "testbucket",
		DBIdentity: g.Identity, BaseSeq: g.BaseSeq, Families: Families})
	if err != nil {
		return b, err
	}
	if err := r.Put(ctx, b.Meta, bytes.NewReader(meta), int64(len(meta))); err != nil {
		return b, err
	}
	// The state at the base export: a few keys written before tailing.
	m := model{}
	for i := range 5 {
		seq := g.BaseSeq - 10 + uint64(i)
		if err := m.apply(batch(seq, g.Account, uint64(i+1))); err != nil {
			return b, err
		}
	}
	change := uint64(5)
	if !g.NoExport {
		e, err := putExport(ctx, r, g, m, g.BaseSeq, g.Created, change)
		if err != nil {
			return b, err
		}
		b.Exports = append(b.Exports, e)
	}
	b.States[g.BaseSeq] = m.sums()
	seq := g.BaseSeq + 1
	lID, _ := changelog.FamilyID(Families)
	for i, s := range g.Segments {
		if s.Batches < 1 {
			return b, fmt.Errorf("testbucket: segment %d has no batch", i)
		}
		var batches []segment.Batch
		lb := changelog.NewLabeler(lID)
		for j := range s.Batches {
			change++
			bt := segment.Batch{Seq: seq, CaptureUnixMs: s.Capture.Add(time.Duration(j) * s.Step).UnixMilli(), Data: batch(seq, g.Account, change)}
			if err := m.apply(bt.Data); err != nil {
				return b, err
			}
			if err := lb.Add(bt); err != nil {
				return b, err
			}
			batches = append(batches, bt)
			seq += batchCount
			b.States[seq-1] = m.sums()
		}
		first, last := batches[0].Seq, seq-1
		var buf bytes.Buffer
		last0 := batches[len(batches)-1].CaptureUnixMs
		w, err := segment.NewSegmentWriter(&buf, segment.Header{Kind: segment.KindSegment, Generation: g.ID,
			DBIdentity: g.Identity, FirstSeq: first, LastSeq: last, Created: time.UnixMilli(last0).UTC(),
			Families: Families, Compression: segment.CompressionZstd})
		if err != nil {
			return b, err
		}
		w.SetLabels(lb.Labels())
		for _, bt := range batches {
			if err := w.Append(bt); err != nil {
				return b, err
			}
		}
		if _, err := w.Close(); err != nil {
			return b, err
		}
		key := layout.SegmentKey(g.ID, first, last)
		ls := layout.Segment{Object: layout.Object{Key: key, Size: int64(buf.Len())}, First: first, Last: last}
		if s.Missing {
			b.Missing = append(b.Missing, ls)
		} else {
			if err := r.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
				return b, err
			}
			b.Segments = append(b.Segments, ls)
		}
		b.Last = last
		if s.ExportAfter {
			delay := s.ExportDelay
			if delay == 0 {
				delay = time.Millisecond
			}
			e, err := putExport(ctx, r, g, m, last, time.UnixMilli(last0).Add(delay), change)
			if err != nil {
				return b, err
			}
			b.Exports = append(b.Exports, e)
		}
	}
	if b.Last == 0 {
		b.Last = g.BaseSeq
	}
	return b, nil
}

// batch is one source transaction at seq: a document put, a counter
// increment and the changelog entry Stalwart writes for it.
func batch(seq uint64, account uint32, change uint64) []byte {
	return wbatch.NewBuilder(seq).
		Add(wbatch.Record{Op: wbatch.OpPut, CF: 2, Key: fmt.Appendf(nil, "doc-%08d", change), Value: fmt.Appendf(nil, "value of change %d at seq %d", change, seq)}).
		Add(wbatch.Record{Op: wbatch.OpMerge, CF: 1, Key: []byte("counter"), Value: stalwart.EncodeCounter(1)}).
		Add(wbatch.Record{Op: wbatch.OpPut, CF: 3,
			Key:   changelog.EncodeKey(changelog.Key{Account: account, Collection: changelog.Email, ChangeID: change}),
			Value: changelog.EncodeChangeSet(changelog.ChangeSet{ItemInserts: []uint64{change}})}).
		Bytes()
}

func putExport(ctx context.Context, r uploader.Replica, g Generation, m model, seq uint64, created time.Time, change uint64) (layout.Export, error) {
	var buf bytes.Buffer
	w, err := segment.NewExportWriter(&buf, segment.Header{Kind: segment.KindExport, Generation: g.ID,
		DBIdentity: g.Identity, FirstSeq: seq, LastSeq: seq, Created: created.UTC(), Families: Families,
		Compression: segment.CompressionZstd})
	if err != nil {
		return layout.Export{}, err
	}
	for i, f := range Families {
		for _, k := range slices.Sorted(maps.Keys(m[f.Name])) {
			if err := w.Add(i, []byte(k), m[f.Name][k]); err != nil {
				return layout.Export{}, err
			}
		}
	}
	w.SetAccountChanges(map[uint32]uint64{g.Account: change})
	if _, err := w.Close(); err != nil {
		return layout.Export{}, err
	}
	key := layout.ExportKey(g.ID, seq)
	if err := r.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		return layout.Export{}, err
	}
	return layout.Export{Object: layout.Object{Key: key, Size: int64(buf.Len())}, Seq: seq}, nil
}
