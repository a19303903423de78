package integration

import (
	"strings"
	"testing"
)

// TestWALGapStartsNewGeneration: tailer stops, the primary writes and
// flushes until the WAL tailer needs is gone, tailer restarts. It must
// notice the gap, start a new generation with a full export, and restores
// on both sides of the gap must equal the primary; the sequence range lost
// in the gap must be refused, not restored wrongly.
func TestWALGapStartsNewGeneration(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b, 2)
			e.load(200)
			e.startTailer()
			e.load(300)
			beforeGap := e.mark()
			e.waitRestorable(beforeGap.Seq)
			e.stopTailer()

			e.load(300)
			lost := e.mark() // written while tailer was down
			for i := 0; i < 3; i++ {
				if err := e.gen.Flush(); err != nil {
					t.Fatal(err)
				}
				e.load(100)
			}

			e.startTailer()
			e.load(300)
			afterGap := e.mark()
			e.waitRestorable(afterGap.Seq)
			e.stopTailer()

			gens := e.generations()
			if len(gens) != 2 {
				t.Fatalf("got %d generations after a WAL gap, want 2", len(gens))
			}
			meta := readMeta(t, e, gens[1].MetaKey)
			if !strings.Contains(meta.Reason, "gap") {
				t.Fatalf("second generation's reason is %q, want a WAL gap", meta.Reason)
			}
			if n, _ := gens[0].NewestRestorable(); n < beforeGap.Seq {
				t.Fatalf("first generation reaches %d, want at least %d", n, beforeGap.Seq)
			}
			e.checkRestore(beforeGap)
			e.checkRestore(afterGap)
			if lost.Seq > gens[0].LastSeq() && lost.Seq < gens[1].Exports[0].Seq {
				if _, err := e.restoreAt(lost.Seq); err == nil || !strings.Contains(err.Error(), "restorable range") {
					t.Fatalf("restore at %d (inside the gap) gave %v, want a clear refusal", lost.Seq, err)
				}
			}
		})
	}
}
