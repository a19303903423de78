package agent_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailer-backup/tailer/agent"
	"github.com/tailer-backup/tailer/internal/promtest"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader/conformance"
)

// hour is a backstop poll (or a delay) that never comes within a test:
// whatever is shipped was captured and sealed without it.
const hour = time.Hour

// TestCaptureWithoutPoll: commits made after the first poll reach the
// replica although the next poll is an hour away: the agent learns that
// the WAL grew and seals by --max-delay.
func TestCaptureWithoutPoll(t *testing.T) {
	base, primary, w, rep := primaryAndBucket(t, 20)
	stop := runFor(t, agent.Config{DB: primary, Scratch: filepath.Join(base, "scratch"), Replica: rep,
		Poll: hour, MaxDelay: 20 * time.Millisecond, Log: testLogger(t)})
	waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber())
	for round := 0; round < 3; round++ {
		for i := 0; i < 5; i++ {
			w.tx(t)
		}
		waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownSealsPending: batches read but not yet due for sealing
// (--max-delay an hour) are sealed and uploaded on SIGTERM.
func TestShutdownSealsPending(t *testing.T) {
	base, primary, w, rep := primaryAndBucket(t, 20)
	reg := prometheus.NewRegistry()
	stop := runFor(t, agent.Config{DB: primary, Scratch: filepath.Join(base, "scratch"), Replica: rep,
		Poll: hour, MaxDelay: hour, Registry: reg, Log: testLogger(t)})
	waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber())
	read := promtest.Value(t, reg, "tailer_batches_from_pins_total")
	for i := 0; i < 5; i++ {
		w.tx(t)
	}
	waitFor(t, "the new batches to be read", func() bool { return promtest.Value(t, reg, "tailer_batches_from_pins_total") >= read+5 })
	if n := promtest.Value(t, reg, "tailer_segments_total"); n != 0 {
		t.Fatalf("%v segments sealed before --max-delay (an hour) passed", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber())
	if n := promtest.Value(t, reg, "tailer_segments_total"); n != 1 {
		t.Fatalf("%v segments after shutdown, want the pending batches in one", n)
	}
}

// TestMinPutInterval: after a segment, the next one waits for
// --min-put-interval although its batches are --max-delay old; shutdown
// seals it.
func TestMinPutInterval(t *testing.T) {
	base, primary, w, rep := primaryAndBucket(t, 20)
	reg := prometheus.NewRegistry()
	stop := runFor(t, agent.Config{DB: primary, Scratch: filepath.Join(base, "scratch"), Replica: rep,
		Poll: hour, MaxDelay: 5 * time.Millisecond, MinPutInterval: hour, Registry: reg, Log: testLogger(t)})
	waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber())
	w.tx(t)
	waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber()) // the first segment: no earlier one to space from
	read := promtest.Value(t, reg, "tailer_batches_from_pins_total")
	for i := 0; i < 3; i++ {
		w.tx(t)
	}
	waitFor(t, "the new batches to be read", func() bool { return promtest.Value(t, reg, "tailer_batches_from_pins_total") >= read+3 })
	// Many times --max-delay: a seal due by it alone would have happened.
	time.Sleep(200 * time.Millisecond)
	if n := promtest.Value(t, reg, "tailer_segments_total"); n != 1 {
		t.Fatalf("%v segments within --min-put-interval, want 1", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber())
	if n := promtest.Value(t, reg, "tailer_segments_total"); n != 2 {
		t.Fatalf("%v segments after shutdown, want 2", n)
	}
}

// TestSegmentsSealedAtHotLevel: every segment tailing ships is byte for
// byte what the segment writer gives for its batches at HotLevel, and not
// what it gives at any other level.
func TestSegmentsSealedAtHotLevel(t *testing.T) {
	base, primary, w, rep := primaryAndBucket(t, 200)
	stop := runFor(t, agent.Config{DB: primary, Scratch: filepath.Join(base, "scratch"), Replica: rep,
		MaxDelay: 5 * time.Millisecond, Log: testLogger(t)})
	waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber()) // the base export
	for round := 0; round < 3; round++ {
		for i := 0; i < 20; i++ {
			w.tx(t)
		}
		waitShipped(t, rep, w.st.DB.GetLatestSequenceNumber())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	objs, err := rep.List(ctx, "generations/")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".tseg") {
			continue
		}
		stored := conformance.Get(t, rep, o.Key)
		for _, l := range segment.Levels() {
			same := bytes.Equal(rewriteAt(t, stored, l), stored)
			if same != (l == agent.HotLevel) {
				t.Errorf("%s: equal to a rewrite at %v: %v (sealed at %v expected)", o.Key, l, same, agent.HotLevel)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no segment shipped")
	}
}

// rewriteAt writes obj's batches and labels again under its header at l.
func rewriteAt(t *testing.T, obj []byte, l segment.Level) []byte {
	t.Helper()
	rd, err := segment.Open(bytes.NewReader(obj), int64(len(obj)), "shipped")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var buf bytes.Buffer
	w, err := segment.NewSegmentWriter(&buf, rd.Header(), segment.WithLevel(l))
	if err != nil {
		t.Fatal(err)
	}
	w.SetLabels(rd.Trailer().Labels)
	for {
		b, err := rd.NextBatch()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
