package walpin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/wbatch"
)

// Pinner hard-links the primary's WAL files into a directory of its own
// and reads batches from them. Pin and Run may run concurrently with
// Next and Release.
//
// When pinning is impossible (the pin directory is on another filesystem)
// or switched off, the Pinner is "direct": it reads the primary's own WAL
// files in place, read-only, so tailer still never uses RocksDB's WAL
// iterator (GetUpdatesSince) on its secondary, which Debian's RocksDB 9.10
// (built with assertions) answers with an abort under sustained load. A
// direct Pinner cannot keep a file the primary deletes: falling behind
// the primary's WAL deletion is then a gap, which the caller detects.
type Pinner struct {
	primary, dir string
	log          *slog.Logger

	mu          sync.Mutex
	pins        map[uint64]*pin
	disabledWhy string
	direct      bool // read the primary's files in place; link nothing
}

type pin struct {
	number   uint64
	path     string
	firstSeq uint64 // sequence number of its first batch, once known
	known    bool
	owned    bool // a link in the pin directory: Release and Reset may remove it
}

// New prepares dir (created if needed) and adopts pins left there by an
// earlier run: after a crash they may still bridge a gap.
func New(primary, dir string, log *slog.Logger) (*Pinner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, owned.DirMode); err != nil {
		return nil, fmt.Errorf("create WAL pin dir %s: %w", dir, err)
	}
	p := &Pinner{primary: primary, dir: dir, log: log, pins: map[uint64]*pin{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list WAL pin dir %s: %w", dir, err)
	}
	for _, e := range entries {
		if n, ok := walNumber(e.Name()); ok {
			p.pins[n] = &pin{number: n, path: filepath.Join(dir, e.Name()), owned: true}
		}
	}
	return p, nil
}

// NewDirect returns a Pinner that links nothing and reads the primary's
// WAL files in place (pinning switched off by the operator).
func NewDirect(primary string, log *slog.Logger) *Pinner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pinner{primary: primary, log: log, pins: map[uint64]*pin{}, direct: true,
		disabledWhy: "WAL pinning is switched off: batches are read from the primary's WAL files in place"}
}

// walNumber parses a WAL file name, "000123.log".
func walNumber(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, ".log")
	if !ok || base == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 64)
	return n, err == nil
}

// Disabled says why pinning is off ("" when it works): hard links fail
// when the scratch directory is on another filesystem than the store, or
// the Pinner was made by NewDirect. Reading works either way.
func (p *Pinner) Disabled() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.disabledWhy
}

// Pin links every WAL file of the primary not pinned yet and returns how
// many it linked. A direct Pinner only refreshes its view of the
// primary's WAL files.
func (p *Pinner) Pin() (int, error) {
	entries, err := os.ReadDir(p.primary)
	if err != nil {
		return 0, fmt.Errorf("list WAL files of %s: %w", p.primary, err)
	}
	if p.isDirect() {
		p.refreshDirect(entries)
		return 0, nil
	}
	linked := 0
	for _, e := range entries {
		n, ok := walNumber(e.Name())
		if !ok {
			continue
		}
		did, err := p.pinOne(n, e.Name())
		if err != nil {
			return linked, err
		}
		if did {
			linked++
		}
		if p.isDirect() {
			p.refreshDirect(entries)
			return linked, nil
		}
	}
	return linked, nil
}

func (p *Pinner) isDirect() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.direct
}

// refreshDirect makes the primary's WAL files listed in entries the
// files read in place, and forgets those the primary deleted. Pins owned
// from before (links made by an earlier run) stay: they may still bridge
// a gap.
func (p *Pinner) refreshDirect(entries []os.DirEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	present := map[uint64]bool{}
	for _, e := range entries {
		n, ok := walNumber(e.Name())
		if !ok {
			continue
		}
		present[n] = true
		if _, have := p.pins[n]; !have {
			p.pins[n] = &pin{number: n, path: filepath.Join(p.primary, e.Name())}
		}
	}
	for n, x := range p.pins {
		if !x.owned && !present[n] {
			delete(p.pins, n)
		}
	}
}

// pinOne hard-links the primary's WAL file name (number n) into the pin
// directory unless it is pinned already. A file deleted meanwhile is not
// an error (the gap check sees what is missing); a link across
// filesystems disables pinning, loudly.
func (p *Pinner) pinOne(n uint64, name string) (bool, error) {
	if p.isDirect() {
		return false, nil
	}
	p.mu.Lock()
	_, have := p.pins[n]
	p.mu.Unlock()
	if have {
		return false, nil
	}
	dst := filepath.Join(p.dir, name)
	err := os.Link(filepath.Join(p.primary, name), dst)
	switch {
	case err == nil || errors.Is(err, os.ErrExist):
	case errors.Is(err, os.ErrNotExist):
		return false, nil // deleted meanwhile
	case errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM):
		why := fmt.Sprintf("hard links from %s into %s fail (%v): WAL pinning is off and batches are read from the store's WAL files in place, so a tailer that falls behind the primary's WAL deletion starts a new generation; put --scratch on the store's filesystem", p.primary, p.dir, err)
		p.mu.Lock()
		p.disabledWhy, p.direct = why, true
		p.mu.Unlock()
		p.log.Warn(why)
		return false, nil
	default:
		return false, fmt.Errorf("pin WAL %s: %w", name, err)
	}
	p.mu.Lock()
	p.pins[n] = &pin{number: n, path: dst, owned: true}
	p.mu.Unlock()
	return true, nil
}

// Run pins new WAL files until ctx ends: at once when the kernel reports
// a new file in the primary's directory (inotify), and by a full scan
// every interval as a backstop. The event path matters: a WAL file of a
// primary with small memtables and a WAL size cap can be created, filled,
// flushed and deleted within a few milliseconds under full load (seen in
// TestBucketOutage: 256 KiB memtables, 2 MiB WAL cap), so a scan every
// 50 ms alone misses some, and each miss is a gap, that is a new
// generation with a full export. Without inotify (the watch cannot be set
// up) the scan alone runs, and the interval must then be shorter than a
// WAL file's life.
func (p *Pinner) Run(ctx context.Context, every time.Duration) {
	stop, err := watchCreates(p.primary, func(name string) {
		if n, ok := walNumber(name); ok {
			if _, err := p.pinOne(n, name); err != nil {
				p.log.Debug("pinning a new WAL file failed; the next scan retries", "file", name, "err", err)
			}
		}
	}, func() {
		p.log.Debug("the store directory's event queue overflowed: rescanning")
		p.Pin() //nolint:errcheck // the periodic scan retries and reports
	})
	if err != nil {
		// e.g. fs.inotify.max_user_instances reached on a busy node
		p.log.Warn("watching the store directory for new WAL files failed; pinning by periodic scan only", "dir", p.primary, "err", err)
	} else {
		defer stop()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		if _, err := p.Pin(); err != nil {
			if !failing {
				p.log.Warn("pinning WAL files failed; retrying", "err", err)
			}
			failing = true
		} else {
			failing = false
		}
		if p.isDirect() {
			return // hard links fail: nothing to pin, Next reads in place
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sorted returns the pins in WAL number order, learning first sequence
// numbers where still unknown.
func (p *Pinner) sorted() []*pin {
	p.mu.Lock()
	out := make([]*pin, 0, len(p.pins))
	for _, x := range p.pins {
		out = append(out, x)
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].number < out[j].number })
	for _, x := range out {
		if !x.known {
			if seq, ok := firstSeq(x.path); ok {
				p.mu.Lock()
				x.firstSeq, x.known = seq, true
				p.mu.Unlock()
			}
		}
	}
	return out
}

// firstSeq reads the sequence number of a WAL file's first batch from its
// first physical record.
func firstSeq(path string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	buf := make([]byte, blockSize)
	n, _ := f.Read(buf)
	buf = buf[:n]
	for off := 0; off+headerSize <= len(buf); {
		length := int(binary.LittleEndian.Uint16(buf[off+4 : off+6]))
		typ := buf[off+6]
		hs := headerSize
		if typ >= typeRecyclableFull && typ <= typeRecyclableLast || typ == typeRecyclableTimestampSize {
			hs = recyclableHeaderSize
		}
		if typ == typeZero || off+hs+length > len(buf) {
			return 0, false
		}
		if b := normalize(typ); (b == typeFull || b == typeFirst) && length >= wbatch.HeaderLen {
			return binary.LittleEndian.Uint64(buf[off+hs:]), true
		}
		off += hs + length
	}
	return 0, false
}

// Release drops the pins whose every batch is at or before shipped: a pin
// is done when the next pinned file starts at or before shipped+1.
func (p *Pinner) Release(shipped uint64) (int, error) {
	pins := p.sorted()
	released := 0
	for i := 0; i+1 < len(pins); i++ {
		next := pins[i+1]
		if !next.known || next.firstSeq > shipped+1 {
			break
		}
		if !pins[i].owned {
			continue // the primary's own file: never removed by tailer
		}
		if err := os.Remove(pins[i].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return released, fmt.Errorf("release WAL pin %s: %w", pins[i].path, err)
		}
		p.mu.Lock()
		delete(p.pins, pins[i].number)
		p.mu.Unlock()
		released++
	}
	return released, nil
}

// Stats reports the pins held and their size, for metrics.
func (p *Pinner) Stats() (files int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range p.pins {
		if !x.owned {
			continue
		}
		if st, err := os.Stat(x.path); err == nil {
			files++
			bytes += st.Size()
		}
	}
	return files, bytes
}

// Cursor is a position in the pinned WAL: a file and the byte offset
// just after the last record consumed. The zero Cursor means "find the
// file that holds the wanted sequence number".
type Cursor struct {
	File   uint64
	Offset int64
}

// ErrNotPinned means no pinned file holds the wanted sequence number: the
// primary deleted its WAL before it could be pinned (tailer was down, or
// on another filesystem). It is a gap.
var ErrNotPinned = errors.New("no pinned WAL file holds the wanted batch")

// Next calls fn with each batch after cur whose first sequence number is
// at most to, in WAL order, reading only bytes not read before, and
// returns the cursor to continue from. With a zero cursor it starts in
// the newest pin whose first batch is at or before want. The caller
// skips batches it already has and checks continuity. Pins are refreshed
// first, so the newest WAL file is always seen.
func (p *Pinner) Next(cur Cursor, want, to uint64, fn func(seq uint64, data []byte) error) (Cursor, error) {
	if _, err := p.Pin(); err != nil {
		return cur, err
	}
	pins := p.sorted()
	if cur.File == 0 {
		found := false
		for _, x := range pins {
			if x.known && x.firstSeq <= want {
				cur, found = Cursor{File: x.number}, true
			}
		}
		if !found {
			for _, x := range pins {
				if x.known {
					return cur, fmt.Errorf("%w: want %d, the oldest pinned WAL starts at %d", ErrNotPinned, want, x.firstSeq)
				}
			}
			return cur, nil // no WAL written yet: nothing to read
		}
	}
	for i, x := range pins {
		if x.number < cur.File {
			continue
		}
		off := int64(0)
		if x.number == cur.File {
			off = cur.Offset
		}
		stopped := false
		next, err := readFileFrom(x.path, x.number, off, func(b []byte, _ int64) error {
			h, err := wbatch.ReadHeader(b)
			if err != nil {
				return fmt.Errorf("pinned WAL %s: %w", x.path, err)
			}
			if h.Seq > to {
				stopped = true
				return errStop
			}
			return fn(h.Seq, append([]byte(nil), b...))
		})
		if errors.Is(err, os.ErrNotExist) {
			// Only a file read in place can vanish (the primary deleted
			// it): whatever it held and was not read yet is a gap, which
			// the caller's continuity check reports.
			err, next = nil, off
		}
		cur = Cursor{File: x.number, Offset: next}
		if err != nil || stopped {
			return cur, err
		}
		if i+1 < len(pins) {
			// A newer WAL file exists, so this one is complete: go on.
			cur = Cursor{File: pins[i+1].number}
		}
	}
	return cur, nil
}

// Reset drops every pin. A new generation calls it: after the store was
// replaced or restored, WAL file numbers start over and an old pin with a
// reused number would be taken for the new file.
func (p *Pinner) Reset() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n, x := range p.pins {
		if x.owned {
			if err := os.Remove(x.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("drop WAL pin %s: %w", x.path, err)
			}
		}
		delete(p.pins, n)
	}
	return nil
}
