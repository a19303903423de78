package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tailer-backup/tailer/segment"
)

// Mark records the primary's state at one sequence number: the per-family
// key counts and digests a restore to Seq must reproduce. Marks are taken
// while writing and stored as JSON lines, so a test or the demo can later
// restore to any of them and compare.
type Mark struct {
	// Seq is the sequence number of the snapshot the digests come from.
	Seq uint64 `json:"seq"`
	// Tx is the number of generator transactions written at Seq.
	Tx int `json:"tx"`
	// Time is when the mark was taken (UTC), for restore --time tests.
	Time     time.Time           `json:"time"`
	Families []segment.FamilySum `json:"families"`
	// Blobs is the blob directory's part, when the generator writes one.
	Blobs *BlobsMark `json:"blobs,omitempty"`
}

// Mark takes one RocksDB snapshot and digests every family as of it, so
// the sequence number and the digests describe the same state even if
// RocksDB flushes or compacts meanwhile.
func (g *Generator) Mark(ctx context.Context) (Mark, error) {
	if g.s == nil {
		return Mark{}, errors.New("loadgen: generator is closed")
	}
	snap := g.s.DB.NewSnapshot()
	defer g.s.DB.ReleaseSnapshot(snap)
	seq := snap.GetSequenceNumber()
	fams, err := g.s.Digests(ctx, snap)
	if err != nil {
		return Mark{}, fmt.Errorf("loadgen: mark at seq %d: %w", seq, err)
	}
	m := Mark{Seq: seq, Tx: g.n, Time: time.Now().UTC().Round(0), Families: fams}
	if g.blobs != nil {
		if m.Blobs, err = g.blobsMark(ctx, snap); err != nil {
			return Mark{}, fmt.Errorf("loadgen: mark at seq %d: %w", seq, err)
		}
	}
	return m, nil
}

// AppendMark appends m to the JSON-lines file at path (created if needed)
// and syncs it, so a mark survives a crash of the writer right after.
func AppendMark(path string, m Mark) error {
	line, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("loadgen: encode mark: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("loadgen: append mark to %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("loadgen: sync %s: %w", path, err)
	}
	return f.Close()
}

// ReadMarks reads every mark of a JSON-lines file, in file order. Blank
// lines are skipped; any other line that is not a mark is an error naming
// the line.
func ReadMarks(path string) ([]Mark, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	var out []Mark
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var m Mark
		if err := json.Unmarshal(text, &m); err != nil {
			return nil, fmt.Errorf("loadgen: %s line %d: %w", path, line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: read %s: %w", path, err)
	}
	return out, nil
}

// FamilyResult is the comparison of one family between a mark (want) and
// a store (got).
type FamilyResult struct {
	Name       string
	InWant     bool
	InGot      bool
	WantKeys   uint64
	GotKeys    uint64
	WantDigest string
	GotDigest  string
	// Equal is true when both sides hold the same keys and values, or when
	// the family is missing on one side and empty on the other (a restore
	// need not create families nobody wrote).
	Equal bool
}

func (r FamilyResult) String() string {
	switch {
	case !r.InGot:
		return fmt.Sprintf("family %s: missing from store, mark has %d keys", r.Name, r.WantKeys)
	case !r.InWant:
		return fmt.Sprintf("family %s: not in mark, store has %d keys", r.Name, r.GotKeys)
	case r.Equal:
		return fmt.Sprintf("family %s: %d keys, digest %s", r.Name, r.GotKeys, r.GotDigest)
	case r.WantKeys != r.GotKeys:
		return fmt.Sprintf("family %s: keys want %d got %d", r.Name, r.WantKeys, r.GotKeys)
	default:
		return fmt.Sprintf("family %s: keys want %d got %d, digest want %s got %s",
			r.Name, r.WantKeys, r.GotKeys, r.WantDigest, r.GotDigest)
	}
}

// CompareFamilies compares every family of want and got: want's families
// in want's order, then those only in got.
func CompareFamilies(want, got []segment.FamilySum) []FamilyResult {
	byName := make(map[string]segment.FamilySum, len(got))
	for _, f := range got {
		byName[f.Name] = f
	}
	seen := make(map[string]bool, len(want))
	var out []FamilyResult
	for _, w := range want {
		seen[w.Name] = true
		r := FamilyResult{Name: w.Name, InWant: true, WantKeys: w.Keys, WantDigest: w.Digest}
		if g, ok := byName[w.Name]; ok {
			r.InGot, r.GotKeys, r.GotDigest = true, g.Keys, g.Digest
			r.Equal = w.Keys == g.Keys && w.Digest == g.Digest
		} else {
			r.Equal = w.Keys == 0
		}
		out = append(out, r)
	}
	for _, g := range got {
		if !seen[g.Name] {
			out = append(out, FamilyResult{Name: g.Name, InGot: true, GotKeys: g.Keys, GotDigest: g.Digest, Equal: g.Keys == 0})
		}
	}
	return out
}

// CompareMark returns nil if got (a store's digests) matches the mark,
// else an error listing each family that differs with its key counts.
func CompareMark(m Mark, got []segment.FamilySum) error {
	var diffs []string
	for _, r := range CompareFamilies(m.Families, got) {
		if !r.Equal {
			diffs = append(diffs, r.String())
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("store differs from mark at seq %d (tx %d) in %d families: %s",
		m.Seq, m.Tx, len(diffs), strings.Join(diffs, "; "))
}
