// Package layout names the objects tailer writes under a replica prefix
// and reads a LIST of them back into generations (docs/design.md, "Bucket
// layout", is the normative description):
//
//	generations/<GEN>/generation.json
//	generations/<GEN>/exports/<SEQ>.texp
//	generations/<GEN>/exports/<SEQ>.blobs   (filesystem blob store only)
//	generations/<GEN>/segments/<FIRST>-<LAST>.tseg
//	blobs/<NAME>                             (filesystem blob store only)
//
// GEN sorts by creation time; sequence numbers are 16 lowercase hex digits
// so that names sort in sequence order and one LIST plans a restore.
package layout

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tailer-backup/tailer/segment"
)

// Root is the key prefix of every generation.
const Root = "generations/"

// FormatVersion is the version of generation.json and of the layout;
// readers refuse a newer one.
const FormatVersion = 1

// MetaName is the file name of a generation's metadata object.
const MetaName = "generation.json"

// NewGenerationID returns an id that sorts by creation time: UTC time to
// the millisecond, then a random suffix so two tailers never collide. It
// is made greater than after (the newest id the caller knows, or ""), so
// ids keep sorting in creation order even within one millisecond or under
// a clock step back.
func NewGenerationID(now time.Time, after string) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on Linux
	}
	t := now.UTC()
	if len(after) >= len(idStamp) {
		if prev, err := time.Parse(idStamp, after[:len(idStamp)]); err == nil && !t.After(prev) {
			t = prev.Add(time.Millisecond)
		}
	}
	return t.Format(idStamp) + "-" + hex.EncodeToString(b[:])
}

// idStamp is the time layout of a generation id, up to the "-" before
// its random suffix.
const idStamp = "20060102T150405.000Z"

// idLen is the length of a generation id: stamp, "-", 6 hex digits.
const idLen = len(idStamp) + 1 + 6

// ErrNotCanonical is wrapped by ValidGenerationID's errors.
var ErrNotCanonical = errors.New("not a generation id as tailer writes them")

// ValidGenerationID reports whether id is exactly what NewGenerationID
// produces ("20261122T213000.000Z-3f9a1c": a valid UTC time to the
// millisecond, "-", 6 lowercase hex digits). Keys are untrusted input and
// become local paths, so Parse accepts nothing else.
func ValidGenerationID(id string) error {
	if len(id) != idLen || id[len(idStamp)] != '-' {
		return fmt.Errorf("%q: %w (want %d characters: %s-<6 hex>)", id, ErrNotCanonical, idLen, idStamp)
	}
	t, err := time.Parse(idStamp, id[:len(idStamp)])
	if err != nil || t.Format(idStamp) != id[:len(idStamp)] {
		return fmt.Errorf("%q: %w (the time is not %s)", id, ErrNotCanonical, idStamp)
	}
	for _, c := range []byte(id[len(idStamp)+1:]) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%q: %w (the suffix is not 6 lowercase hex digits)", id, ErrNotCanonical)
		}
	}
	return nil
}

// MetaKey is the key of a generation's generation.json.
func MetaKey(gen string) string { return Root + gen + "/" + MetaName }

// ExportKey is the key of a full export at seq.
func ExportKey(gen string, seq uint64) string {
	return Root + gen + "/exports/" + segment.ExportName(seq)
}

// BlobManifestKey is the key of the blob manifest of the export at seq:
// the names of the blobs of a filesystem blob store that the store
// references at seq (blobship's manifest format). It is written after
// every blob it names is in the replica and before the export itself,
// so an export whose manifest is missing is one whose blobs may be too.
func BlobManifestKey(gen string, seq uint64) string {
	return Root + gen + "/exports/" + fmt.Sprintf("%016x", seq) + BlobManifestSuffix
}

// BlobManifestSuffix ends the name of every blob manifest.
const BlobManifestSuffix = ".blobs"

// SegmentKey is the key of a segment holding batches first..last.
func SegmentKey(gen string, first, last uint64) string {
	return Root + gen + "/segments/" + segment.SegmentName(first, last)
}

// Meta is generation.json: written first in every generation, so a reader
// knows the source store and its families before any data object.
type Meta struct {
	ID         string           `json:"id"`
	Created    time.Time        `json:"created"`
	Reason     string           `json:"reason"`
	DBIdentity string           `json:"db_identity"`
	Source     string           `json:"source,omitempty"` // primary path, informational
	BaseSeq    uint64           `json:"base_seq"`         // sequence of the base export
	Families   []segment.Family `json:"families"`
	Format     int              `json:"format_version"`
	// BaseBatch is the WAL batch ending at BaseSeq, when the store's WAL
	// still held it: until a segment follows the export it is the only
	// record of the shipped history's end, which a restarted tailer
	// compares with the store's (a store that lost writes and reused
	// their sequence numbers starts a new generation).
	BaseBatch *BatchSum `json:"base_batch,omitempty"`
}

// BatchSum identifies one RocksDB WriteBatch without keeping it: the
// sequence numbers it covers and the SHA-256 of its bytes.
type BatchSum struct {
	Seq     uint64 `json:"seq"`
	LastSeq uint64 `json:"last_seq"`
	SHA256  string `json:"sha256"`
}

// Object is one object found in a LIST.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Export is one full export of a generation.
type Export struct {
	Object
	Seq uint64
}

// Segment is one segment of a generation.
type Segment struct {
	Object
	First, Last uint64
}

// Generation gathers one generation's objects, sorted by sequence.
type Generation struct {
	ID       string
	MetaKey  string // "" when generation.json is missing
	Exports  []Export
	Segments []Segment
	// BlobManifests are the exports' blob manifests (a store with a
	// filesystem blob store), sorted by sequence; Seq is their export's.
	BlobManifests []Export
}

// Parse groups listed objects into generations (sorted by id) and returns
// the keys it did not recognise, so callers can warn instead of guessing.
// It accepts canonical keys only, the exact output of MetaKey, ExportKey
// and SegmentKey with a generation id from NewGenerationID: keys are
// untrusted input that restore turns into local paths, so anything else
// (a "..", an empty or "." component, a backslash, another id format) is
// "not a tailer object" and left alone.
func Parse(objs []Object) (gens []Generation, unknown []string) {
	byID := map[string]*Generation{}
	get := func(id string) *Generation {
		g, ok := byID[id]
		if !ok {
			g = &Generation{ID: id}
			byID[id] = g
		}
		return g
	}
	for _, o := range objs {
		k, ok := parseKey(o.Key)
		if !ok {
			unknown = append(unknown, o.Key)
			continue
		}
		g := get(k.gen)
		switch k.kind {
		case kindMeta:
			g.MetaKey = o.Key
		case kindExport:
			g.Exports = append(g.Exports, Export{Object: o, Seq: k.first})
		case kindSegment:
			g.Segments = append(g.Segments, Segment{Object: o, First: k.first, Last: k.last})
		case kindBlobManifest:
			g.BlobManifests = append(g.BlobManifests, Export{Object: o, Seq: k.first})
		}
	}
	for _, g := range byID {
		sort.Slice(g.Exports, func(i, j int) bool { return g.Exports[i].Seq < g.Exports[j].Seq })
		sort.Slice(g.BlobManifests, func(i, j int) bool { return g.BlobManifests[i].Seq < g.BlobManifests[j].Seq })
		sort.Slice(g.Segments, func(i, j int) bool {
			a, b := g.Segments[i], g.Segments[j]
			if a.First != b.First {
				return a.First < b.First
			}
			return a.Last < b.Last
		})
		gens = append(gens, *g)
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i].ID < gens[j].ID })
	return gens, unknown
}

type keyKind int

const (
	kindMeta keyKind = iota + 1
	kindExport
	kindSegment
	kindBlobManifest
)

type parsedKey struct {
	gen         string
	kind        keyKind
	first, last uint64 // export: first is its sequence
}

// parseKey is the exact inverse of MetaKey, ExportKey and SegmentKey:
// it accepts a key only if building it again from what it parsed gives
// the same string.
func parseKey(key string) (parsedKey, bool) {
	rest, ok := strings.CutPrefix(key, Root)
	if !ok {
		return parsedKey{}, false
	}
	parts := strings.Split(rest, "/")
	if ValidGenerationID(parts[0]) != nil {
		return parsedKey{}, false
	}
	k := parsedKey{gen: parts[0]}
	var again string
	switch {
	case len(parts) == 2 && parts[1] == MetaName:
		k.kind, again = kindMeta, MetaKey(k.gen)
	case len(parts) == 3 && parts[1] == "exports" && strings.HasSuffix(parts[2], BlobManifestSuffix):
		stem := strings.TrimSuffix(parts[2], BlobManifestSuffix)
		seq, err := segment.ParseExportName(stem + ".texp")
		if err != nil {
			return parsedKey{}, false
		}
		k.kind, k.first, k.last, again = kindBlobManifest, seq, seq, BlobManifestKey(k.gen, seq)
	case len(parts) == 3 && parts[1] == "exports":
		seq, err := segment.ParseExportName(parts[2])
		if err != nil {
			return parsedKey{}, false
		}
		k.kind, k.first, k.last, again = kindExport, seq, seq, ExportKey(k.gen, seq)
	case len(parts) == 3 && parts[1] == "segments":
		first, last, err := segment.ParseSegmentName(parts[2])
		if err != nil {
			return parsedKey{}, false
		}
		k.kind, k.first, k.last, again = kindSegment, first, last, SegmentKey(k.gen, first, last)
	default:
		return parsedKey{}, false
	}
	return k, again == key
}

// LastSeq is the newest sequence number the generation holds: the end of
// its newest segment or its newest export, whichever is later.
func (g Generation) LastSeq() uint64 {
	var last uint64
	if n := len(g.Exports); n > 0 {
		last = g.Exports[n-1].Seq
	}
	for _, s := range g.Segments {
		last = max(last, s.Last)
	}
	return last
}

// BaseExport returns the newest export at or before seq.
func (g Generation) BaseExport(seq uint64) (Export, bool) {
	var best Export
	found := false
	for _, e := range g.Exports {
		if e.Seq <= seq {
			best, found = e, true
		}
	}
	return best, found
}

// Chain returns the segments needed to go from an export at from to the
// state at to (from < seq ≤ to), in order, skipping segments wholly at or
// before from and preferring, among overlapping segments, the one reaching
// furthest (compaction may leave both a wide and a narrow copy). It fails
// if the segments leave a hole anywhere in (from, to].
func (g Generation) Chain(from, to uint64) ([]Segment, error) {
	var out []Segment
	next := from + 1 // first sequence number not yet covered
	for next <= to {
		var best *Segment
		for i := range g.Segments {
			s := &g.Segments[i]
			if s.First <= next && s.Last >= next && (best == nil || s.Last > best.Last) {
				best = s
			}
		}
		if best == nil {
			return nil, fmt.Errorf("generation %s has no segment holding sequence %d (needed to reach %d from the export at %d): the chain has a hole", g.ID, next, to, from)
		}
		out = append(out, *best)
		next = best.Last + 1
	}
	return out, nil
}

// NewestRestorable is the newest sequence number reachable from the
// generation's first export through an unbroken chain of segments; ok is
// false when the generation has no export.
func (g Generation) NewestRestorable() (uint64, bool) {
	if len(g.Exports) == 0 {
		return 0, false
	}
	reach := g.Exports[0].Seq
	for _, e := range g.Exports {
		if e.Seq > reach {
			reach = e.Seq // a later export restarts the chain
		}
		reach = g.Reach(reach)
	}
	return reach, true
}

// Reach is the newest sequence number reachable from the state at seq
// through contiguous segments alone (seq itself when no segment continues
// it). Restore uses it to say how far a chain with a hole still goes.
func (g Generation) Reach(seq uint64) uint64 {
	for {
		grew := false
		for _, s := range g.Segments {
			if s.First <= seq+1 && s.Last > seq {
				seq, grew = s.Last, true
			}
		}
		if !grew {
			return seq
		}
	}
}

// Hole is a range of sequence numbers after a generation's first export
// that no segment holds: batches that were never shipped or were lost.
type Hole struct {
	First, Last uint64
	// Before is the key of the object whose state the hole follows (the
	// segment ending at First-1, or the export at First-1); After is the
	// key of the first segment after it, "" when none follows.
	Before, After string
	// Bridged is true when a later export restarts the chain after the
	// hole, so only the sequence numbers inside it are unrestorable.
	Bridged bool
}

// Holes lists the ranges in (first export, LastSeq] that no segment
// holds. A chain written by tailer never has one (invariant 1 of docs/design.md, "no gap"):
// each is lost data, and verify reports it.
func (g Generation) Holes() []Hole {
	if len(g.Exports) == 0 {
		return nil
	}
	newest, _ := g.NewestRestorable()
	last := g.LastSeq()
	next := g.Exports[0].Seq + 1 // first sequence number not yet covered
	before := g.Exports[0].Key
	var out []Hole
	for _, s := range g.Segments { // sorted by First
		if s.Last < next {
			continue
		}
		if s.First > next {
			out = append(out, Hole{First: next, Last: s.First - 1, Before: before, After: s.Key, Bridged: newest >= s.First})
		}
		next, before = s.Last+1, s.Key
	}
	if next <= last { // an export beyond every segment
		out = append(out, Hole{First: next, Last: last, Before: before, Bridged: true})
	}
	return out
}

// ErrFutureFormat is wrapped by DecodeMeta when generation.json comes from
// a newer tailer: its layout may mean something this version cannot know,
// so restore and verify refuse the generation instead of guessing, while
// other damage to the (informational) file need not stop a restore.
var ErrFutureFormat = errors.New("written by format version")

// MaxMetaLen bounds the size of a generation.json a reader accepts (and of
// the replica's other small JSON objects): tailer writes a few kilobytes,
// and an object in the bucket is untrusted input that must not be read
// into memory whatever its size.
const MaxMetaLen = 16 << 20

// DecodeMeta parses a generation.json and refuses one from a newer format.
func DecodeMeta(key string, raw []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(raw, &m); err != nil {
		return Meta{}, fmt.Errorf("%s is not a valid generation.json: %w", key, err)
	}
	if m.Format > FormatVersion {
		return Meta{}, fmt.Errorf("%s was %w %d; this tailer reads up to %d: upgrade tailer", key, ErrFutureFormat, m.Format, FormatVersion)
	}
	if m.ID == "" {
		return Meta{}, fmt.Errorf("%s has no generation id", key)
	}
	return m, nil
}

// EncodeMeta serialises a generation.json.
func EncodeMeta(m Meta) ([]byte, error) {
	m.Format = FormatVersion
	return json.MarshalIndent(m, "", "  ")
}

// Coverage is a generation's segments split by nesting. Compaction writes
// a wide segment over a run of narrow ones and deletes the narrow ones
// only later (after verifying the wide one, and after a grace period for
// restores that planned from an older LIST), so for a while a bucket holds
// both. Readers that walk every segment (the changelog view) must use the
// uncovered ones only or they see every batch twice.
type Coverage struct {
	// Uncovered are the segments that lie inside no other segment, by
	// First. Each sequence number is held by at most one of them unless
	// two segments overlap without nesting (tailer never writes that).
	Uncovered []Segment
	// Inside maps the key of an uncovered segment to the segments wholly
	// inside its range, by (First, Last): the narrow copies compaction
	// may delete once the wide one is verified.
	Inside map[string][]Segment
}

// Coverage splits the generation's segments into uncovered ones and those
// nested inside them. It runs in O(n log n), as a generation may hold tens
// of thousands of per-poll segments before compaction.
func (g Generation) Coverage() Coverage {
	segs := append([]Segment(nil), g.Segments...)
	// First ascending, then widest first: a segment is nested iff an
	// earlier one in this order reaches at least as far.
	sort.Slice(segs, func(i, j int) bool {
		if segs[i].First != segs[j].First {
			return segs[i].First < segs[j].First
		}
		return segs[i].Last > segs[j].Last
	})
	c := Coverage{Inside: map[string][]Segment{}}
	holder := -1 // index in segs of the uncovered segment reaching furthest so far
	for i, s := range segs {
		if holder >= 0 && segs[holder].Last >= s.Last {
			k := segs[holder].Key
			c.Inside[k] = append(c.Inside[k], s)
			continue
		}
		c.Uncovered = append(c.Uncovered, s)
		if holder < 0 || s.Last > segs[holder].Last {
			holder = i
		}
	}
	for _, in := range c.Inside {
		sort.Slice(in, func(i, j int) bool {
			if in[i].First != in[j].First {
				return in[i].First < in[j].First
			}
			return in[i].Last < in[j].Last
		})
	}
	return c
}
