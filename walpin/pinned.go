package walpin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tailer-backup/tailer/internal/owned"
)

// Pinned hard-links the primary's WAL files into a directory of its own
// the moment they appear and reads batches from the links, which outlive
// the primary's deletion of its WAL: a tailer that falls behind loses
// nothing. A file it cannot link (the pin directory is on another
// filesystem, or the kernel refuses the link) is read in place instead,
// as an InPlace source would, and Disabled says so.
type Pinned struct {
	primary, dir string
	log          *slog.Logger
	link         func(oldname, newname string) error      // os.Link; tests inject failures
	readDir      func(name string) ([]os.DirEntry, error) // os.ReadDir; tests count listings

	// onNew is called after a new file is pinned (OnNewFile); watching
	// is true while Run's directory watch pins new files as they appear.
	onNew    atomic.Pointer[func()]
	watching atomic.Bool

	// seenMtime is the primary directory's mtime before Next's last
	// listing (Next's goroutine only; see Next).
	seenMtime time.Time

	files fileSet

	mu          sync.Mutex
	disabledWhy string
}

var _ Source = (*Pinned)(nil)

// New prepares dir (created if needed) and adopts pins left there by an
// earlier run: after a crash they may still bridge a gap.
func New(primary, dir string, log *slog.Logger) (*Pinned, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, owned.DirMode); err != nil {
		return nil, fmt.Errorf("create WAL pin dir %s: %w", dir, err)
	}
	p := &Pinned{primary: primary, dir: dir, log: log, link: os.Link, readDir: os.ReadDir, files: newFileSet()}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list WAL pin dir %s: %w", dir, err)
	}
	for _, e := range entries {
		if n, ok := walNumber(e.Name()); ok {
			p.files.add(n, filepath.Join(dir, e.Name()), true)
		}
	}
	return p, nil
}

// Disabled implements Source: why some files are read in place, "" while
// every link worked.
func (p *Pinned) Disabled() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.disabledWhy
}

// Refresh implements Source: it links every WAL file of the primary not
// pinned yet and returns how many it linked.
func (p *Pinned) Refresh() (int, error) {
	entries, err := p.readDir(p.primary)
	if err != nil {
		return 0, fmt.Errorf("list WAL files of %s: %w", p.primary, err)
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
	}
	p.files.forgetDeleted(entries) // files read in place that the primary deleted
	return linked, nil
}

// pinOne hard-links the primary's WAL file name (number n) into the pin
// directory unless it is known already. A file deleted meanwhile is not
// an error (the gap check sees what is missing); a file that cannot be
// linked is read in place, loudly.
func (p *Pinned) pinOne(n uint64, name string) (bool, error) {
	if p.files.has(n) {
		return false, nil
	}
	src, dst := filepath.Join(p.primary, name), filepath.Join(p.dir, name)
	err := p.link(src, dst)
	switch {
	case err == nil || errors.Is(err, os.ErrExist):
	case errors.Is(err, os.ErrNotExist):
		return false, nil // deleted meanwhile
	case errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM):
		p.files.add(n, src, false)
		p.newFile()
		p.mu.Lock()
		first := p.disabledWhy == ""
		if first {
			p.disabledWhy = fmt.Sprintf("hard links from %s into %s fail (%v): WAL pinning is off and batches are read from the store's WAL files in place, so a tailer that falls behind the primary's WAL deletion starts a new generation; put the scratch directory on the store's filesystem", p.primary, p.dir, err)
		}
		why := p.disabledWhy
		p.mu.Unlock()
		if first {
			p.log.Warn(why)
		}
		return false, nil
	default:
		return false, fmt.Errorf("pin WAL %s: %w", name, err)
	}
	p.files.add(n, dst, true)
	p.newFile()
	return true, nil
}

// OnNewFile implements Source: f is called on the goroutine that pinned
// the file, after Next can read it.
func (p *Pinned) OnNewFile(f func()) { p.onNew.Store(&f) }

func (p *Pinned) newFile() {
	if f := p.onNew.Load(); f != nil {
		(*f)()
	}
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
func (p *Pinned) Run(ctx context.Context, every time.Duration) {
	stop, err := watchCreates(p.primary, func(name string) {
		if n, ok := walNumber(name); ok {
			if _, err := p.pinOne(n, name); err != nil {
				p.log.Debug("pinning a new WAL file failed; the next scan retries", "file", name, "err", err)
			}
		}
	}, func() {
		p.log.Debug("the store directory's event queue overflowed: rescanning")
		p.Refresh() //nolint:errcheck // the periodic scan retries and reports
	})
	if err != nil {
		// e.g. fs.inotify.max_user_instances reached on a busy node
		p.log.Warn("watching the store directory for new WAL files failed; pinning by periodic scan only", "dir", p.primary, "err", err)
	} else {
		defer stop()
		p.watching.Store(true)
		defer p.watching.Store(false)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		if _, err := p.Refresh(); err != nil {
			if !failing {
				p.log.Warn("pinning WAL files failed; retrying", "err", err)
			}
			failing = true
		} else {
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Next implements Source. The newest WAL file is always seen: while Run's
// directory watch pins new files as they appear (and OnNewFile tells the
// reader), Next lists nothing; otherwise it lists the primary's
// directory again (new WAL files pinned, deleted ones forgotten) when it
// changed since Next last listed it: its mtime moved, or is too recent
// to tell (directory timestamps are coarse, a file created in the same
// tick as the last listing leaves it unchanged). Event-driven capture
// calls Next up to a hundred times a second, and listing a store of
// hundreds of SST and blob files each time was a tenth of tailer's CPU
// at full load (perf).
func (p *Pinned) Next(ctx context.Context, cur Cursor, want, to uint64, fn func(seq uint64, data []byte) error) (Cursor, error) {
	if !p.watching.Load() && p.dirChanged() {
		if _, err := p.Refresh(); err != nil {
			p.seenMtime = time.Time{} // list again next time
			return cur, err
		}
	}
	return p.files.next(ctx, cur, want, to, fn)
}

// dirTimeSlack is how recent a directory mtime must be for Next to list
// the directory anyway: more than the coarsest timestamp tick (a jiffy,
// up to 10 ms).
const dirTimeSlack = 50 * time.Millisecond

// dirChanged reports whether the primary's directory may hold entries
// the last listing by Next did not see.
func (p *Pinned) dirChanged() bool {
	fi, err := os.Stat(p.primary)
	if err != nil {
		return true // the listing reports it
	}
	m := fi.ModTime()
	if m.Equal(p.seenMtime) && time.Since(m) > dirTimeSlack {
		return false
	}
	p.seenMtime = m
	return true
}

// Release implements Source.
func (p *Pinned) Release(shipped uint64) (int, error) { return p.files.release(shipped) }

// Stats implements Source.
func (p *Pinned) Stats() (files int, bytes int64) { return p.files.stats() }

// Reset implements Source.
func (p *Pinned) Reset() error { return p.files.reset() }
