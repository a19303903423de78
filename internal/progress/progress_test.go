package progress

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// TestTerminal: the line is redrawn in place at most every 200 ms, with
// bytes, total, percentage, rate and ETA, and finished with a newline.
func TestTerminal(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	var out bytes.Buffer
	r := New(Options{Label: "download", Terminal: &out, Now: c.now})
	r.SetTotal(100 << 20)
	c.advance(100 * time.Millisecond)
	r.Add(1 << 20)
	if out.Len() != 0 {
		t.Fatalf("drew before 200 ms: %q", out.String())
	}
	c.advance(900 * time.Millisecond) // 1 s in, 10 MiB done
	r.Add(9 << 20)
	want := "\rdownload 10.0 MiB / 100.0 MiB  10%  10.0 MiB/s  ETA 9s"
	if out.String() != want {
		t.Fatalf("line = %q, want %q", out.String(), want)
	}
	out.Reset()
	c.advance(50 * time.Millisecond)
	r.Add(1)
	if out.Len() != 0 {
		t.Fatalf("redrew within 200 ms: %q", out.String())
	}
	c.advance(time.Second)
	r.Set(100 << 20)
	r.Done()
	s := out.String()
	if !strings.HasPrefix(s, "\r") || !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("final line %q: want one \\r-led line ending in a newline", s)
	}
	if !strings.Contains(s, "100.0 MiB / 100.0 MiB 100%") || !strings.Contains(s, "in 2.1s") || strings.Contains(s, "ETA") {
		t.Fatalf("final line %q", s)
	}
	out.Reset()
	r.Done()
	r.Add(5)
	if out.Len() != 0 {
		t.Fatalf("output after Done: %q", out.String())
	}
}

// TestTerminalShorterLineBlanksTheRest: a line shorter than the one
// before is padded so no stale characters remain.
func TestTerminalShorterLineBlanksTheRest(t *testing.T) {
	c := &clock{time.Unix(0, 0)}
	var out bytes.Buffer
	r := New(Options{Label: "x", Unit: Count, Terminal: &out, Now: c.now})
	r.SetTotal(1000)
	c.advance(time.Second)
	r.Add(1) // long ETA
	first := strings.TrimPrefix(out.String(), "\r")
	out.Reset()
	c.advance(time.Second)
	r.Set(999)
	second := strings.TrimPrefix(out.String(), "\r")
	if len(second) < len(first) {
		t.Fatalf("second line %q is shorter than the first %q: leftovers stay on screen", second, first)
	}
}

// TestLog: without a terminal, one record every LogEvery with the numbers
// as attributes, and a final one from Done.
func TestLog(t *testing.T) {
	c := &clock{time.Unix(0, 0)}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r := New(Options{Label: "load", Unit: Count, Log: log, LogEvery: 5 * time.Second, Now: c.now})
	r.SetTotal(1000)
	for i := 0; i < 20; i++ { // 10 s at 50 keys per 500 ms
		c.advance(500 * time.Millisecond)
		r.Add(50)
	}
	r.Done()
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		recs = append(recs, m)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 2 periodic and 1 final:\n%s", len(recs), buf.String())
	}
	first := recs[0]
	if first["msg"] != "progress" || first["what"] != "load" || first["done"] != "500" || first["total"] != "1000" ||
		first["percent"] != 50.0 || first["rate"] != "100/s" || first["eta"] != "5s" {
		t.Fatalf("first record %v", first)
	}
	last := recs[2]
	if last["msg"] != "progress: done" || last["done"] != "1000" || last["percent"] != 100.0 || last["eta"] != nil {
		t.Fatalf("final record %v", last)
	}
}

// TestEstimate: an estimated total is marked and never reaches 100%
// before Done, even when the estimate was low.
func TestEstimate(t *testing.T) {
	c := &clock{time.Unix(0, 0)}
	var out bytes.Buffer
	r := New(Options{Label: "export", Terminal: &out, Now: c.now, Estimate: true})
	r.SetTotal(1000)
	c.advance(time.Second)
	r.Set(2000)
	if s := out.String(); !strings.Contains(s, "/ ~1000 B  99%") {
		t.Fatalf("line %q", s)
	}
	r.Done()
	if s := out.String(); !strings.Contains(s, "100%") {
		t.Fatalf("final %q", s)
	}
}

// TestUnknownTotal: no total, no percentage and no ETA.
func TestUnknownTotal(t *testing.T) {
	c := &clock{time.Unix(0, 0)}
	var out bytes.Buffer
	r := New(Options{Label: "export", Terminal: &out, Now: c.now})
	c.advance(2 * time.Second)
	r.Add(4096)
	if s := out.String(); s != "\rexport 4.0 KiB  2.0 KiB/s" {
		t.Fatalf("line %q", s)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 30: "3.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestLineSharedWithLogs: a log record written through the Line blanks
// the progress line first and starts at the left margin; the next redraw
// puts the progress line back.
func TestLineSharedWithLogs(t *testing.T) {
	c := &clock{time.Unix(0, 0)}
	var out bytes.Buffer
	line := NewLine(&out)
	log := slog.New(slog.NewTextHandler(line, nil))
	r := New(Options{Label: "download", Terminal: line, Now: c.now})
	c.advance(time.Second)
	r.Add(2048)
	drawn := out.String() // "\rdownload 2.0 KiB  2.0 KiB/s"
	out.Reset()
	log.Info("loaded family")
	got := out.String()
	blank := "\r" + strings.Repeat(" ", len(drawn)-1) + "\r"
	if !strings.HasPrefix(got, blank) || !strings.Contains(got, "msg=\"loaded family\"") {
		t.Fatalf("log output %q: want the progress line blanked first", got)
	}
	out.Reset()
	log.Info("again")
	if strings.HasPrefix(out.String(), "\r") {
		t.Fatalf("blanked a line that was not on display: %q", out.String())
	}
	out.Reset()
	c.advance(time.Second)
	r.Add(2048)
	if !strings.HasPrefix(out.String(), "\rdownload 4.0 KiB") {
		t.Fatalf("redraw %q", out.String())
	}
}

// TestAbort: a failed operation leaves its last line and a newline, and
// logs nothing more.
func TestAbort(t *testing.T) {
	c := &clock{time.Unix(0, 0)}
	var out bytes.Buffer
	r := New(Options{Label: "load", Unit: Count, Terminal: &out, Now: c.now})
	c.advance(time.Second)
	r.Add(10)
	r.Abort()
	if s := out.String(); s != "\rload 10  10/s\n" {
		t.Fatalf("after Abort: %q", s)
	}
	r.Done()
	var logged bytes.Buffer
	q := New(Options{Label: "load", Log: slog.New(slog.NewTextHandler(&logged, nil)), Now: c.now})
	q.Abort()
	if logged.Len() != 0 {
		t.Fatalf("Abort logged %q", logged.String())
	}
}
