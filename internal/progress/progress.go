// Package progress shows how far a long export or restore has come: bytes
// (or keys) done, the rate and an ETA. On a terminal it redraws one line
// on stderr ("\r...") at most every 200 ms, so an operator watching sees
// it move without the line flooding the scrollback; elsewhere (systemd,
// Kubernetes, a pipe) it writes a log record every few seconds instead,
// because carriage returns make a mess of log collectors.
//
// A Reporter is driven by its callers (Add, Set, SetTotal) and renders
// from those calls only: no goroutine, and a clock that tests replace.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Unit says what is counted.
type Unit int

const (
	Bytes Unit = iota // shown as KiB, MiB, ...
	Count             // shown as plain numbers (keys, batches)
)

// Options configure a Reporter. Everything but Label is optional.
type Options struct {
	Label string // what is progressing, e.g. "export", "download"
	Unit  Unit
	// Terminal, when set, receives the redrawn line (stderr on a TTY);
	// pass the *Line the logger also writes to, so log records do not
	// land in the middle of the progress line. When nil, progress goes to
	// Log.
	Terminal io.Writer
	// Log receives a record every LogEvery when Terminal is nil; nil
	// discards them.
	Log *slog.Logger
	// LogEvery is the interval between log records (default 5s).
	LogEvery time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
	// Estimate marks the total as an estimate: it is shown with a "~",
	// and the percentage stops at 99 until Done.
	Estimate bool
}

// DrawEvery is the terminal redraw interval.
const DrawEvery = 200 * time.Millisecond

// Reporter tracks one operation. Its methods are safe for concurrent use.
type Reporter struct {
	o     Options
	line  *Line // o.Terminal as a Line; nil: log
	mu    sync.Mutex
	start time.Time
	last  time.Time // last render
	done  int64
	total int64 // 0: unknown
	ended bool
}

// New starts a reporter; its clock starts now.
func New(o Options) *Reporter {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LogEvery <= 0 {
		o.LogEvery = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	now := o.Now()
	r := &Reporter{o: o, start: now, last: now}
	if o.Terminal != nil {
		if l, ok := o.Terminal.(*Line); ok {
			r.line = l
		} else {
			r.line = NewLine(o.Terminal)
		}
	}
	return r
}

// Add counts n more units done.
func (r *Reporter) Add(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done += n
	r.maybeRender()
}

// Set sets the units done so far (for callers that report running totals).
func (r *Reporter) Set(done int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = done
	r.maybeRender()
}

// SetTotal sets the expected total (0 or less: unknown, no ETA).
func (r *Reporter) SetTotal(total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total = max(total, 0)
}

// Abort ends the reporter without a final report (the operation failed
// and its error follows): a terminal line is kept as it was and ended
// with a newline, so the error starts on a line of its own.
func (r *Reporter) Abort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.ended = true
	if r.line != nil {
		r.line.end()
	}
}

// Done renders the final state: the terminal line is completed with a
// newline, or a last record is logged. Later calls do nothing.
func (r *Reporter) Done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.ended = true
	r.render(r.o.Now(), true)
}

func (r *Reporter) maybeRender() {
	if r.ended {
		return
	}
	now := r.o.Now()
	every := r.o.LogEvery
	if r.line != nil {
		every = DrawEvery
	}
	if now.Sub(r.last) < every {
		return
	}
	r.render(now, false)
}

func (r *Reporter) render(now time.Time, final bool) {
	r.last = now
	elapsed := now.Sub(r.start)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(r.done) / s
	}
	pct, eta := -1, time.Duration(-1)
	if r.total > 0 {
		pct = int(min(100, r.done*100/r.total))
		if r.o.Estimate && !final {
			pct = min(pct, 99)
		}
		if rate > 0 && r.done < r.total {
			eta = time.Duration(float64(r.total-r.done) / rate * float64(time.Second))
		}
	}
	if r.line == nil {
		attrs := []any{"what", r.o.Label, "done", r.amount(r.done)}
		if r.total > 0 {
			attrs = append(attrs, "total", r.approx()+r.amount(r.total), "percent", pct)
		}
		attrs = append(attrs, "rate", r.amount(int64(rate))+"/s", "elapsed", elapsed.Round(time.Second).String())
		if eta >= 0 && !final {
			attrs = append(attrs, "eta", eta.Round(time.Second).String())
		}
		msg := "progress"
		if final {
			msg = "progress: done"
		}
		r.o.Log.Info(msg, attrs...)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.o.Label, r.amount(r.done))
	if r.total > 0 {
		fmt.Fprintf(&b, " / %s%s %3d%%", r.approx(), r.amount(r.total), pct)
	}
	fmt.Fprintf(&b, "  %s/s", r.amount(int64(rate)))
	switch {
	case final:
		fmt.Fprintf(&b, "  in %s", elapsed.Round(100*time.Millisecond))
	case eta >= 0:
		fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
	}
	r.line.draw(b.String(), final)
}

// Line is a terminal shared by a progress line and other output (the
// logger): a Write first blanks a progress line on display, so a log
// record starts at the left margin, and the next redraw puts the progress
// line back below it. It is safe for concurrent use.
type Line struct {
	mu    sync.Mutex
	w     io.Writer
	shown int // length of the progress line on display; 0: none
}

// NewLine wraps a terminal.
func NewLine(w io.Writer) *Line { return &Line{w: w} }

// Write implements io.Writer for other output.
func (l *Line) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown > 0 {
		fmt.Fprintf(l.w, "\r%s\r", strings.Repeat(" ", l.shown))
		l.shown = 0
	}
	return l.w.Write(p)
}

// draw replaces the progress line with s; final ends it with a newline.
func (l *Line) draw(s string, final bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pad := strings.Repeat(" ", max(0, l.shown-len(s)))
	l.shown = len(s)
	end := ""
	if final {
		end, l.shown = "\n", 0
	}
	fmt.Fprintf(l.w, "\r%s%s%s", s, pad, end)
}

// end finishes a progress line on display with a newline.
func (l *Line) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown > 0 {
		fmt.Fprint(l.w, "\n")
		l.shown = 0
	}
}

func (r *Reporter) approx() string {
	if r.o.Estimate {
		return "~"
	}
	return ""
}

func (r *Reporter) amount(n int64) string {
	if r.o.Unit == Count {
		return fmt.Sprint(n)
	}
	return HumanBytes(n)
}

// HumanBytes formats n bytes with binary units (1.5 MiB).
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
