package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/integration/loadgen"
)

// TestLiveTailRestoresEveryMark: the primary is written while tailer runs;
// restores at every recorded mark, at the newest state, and at a sequence
// inside a batch equal the primary's state at that point, family by family
// (merge counters, blob files and range-deleted changelog keys included).
func TestLiveTailRestoresEveryMark(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b, 1)
			e.load(300) // history from before tailer started
			e.startTailer()
			var marks []loadgen.Mark
			for i := 0; i < 5; i++ {
				e.load(250)
				marks = append(marks, e.mark())
			}
			// A multi-record transaction right after a mark: a restore to a
			// sequence inside it must stop before it, at the mark.
			before := e.mark()
			tx, err := e.gen.Tx(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for tx.LastSeq == tx.FirstSeq {
				before = e.mark()
				if tx, err = e.gen.Tx(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			e.load(100)
			final := e.mark()
			e.waitRestorable(final.Seq)
			e.stopTailer()

			for _, m := range marks {
				e.checkRestore(m)
			}
			inside, err := e.restoreAt(tx.LastSeq - 1)
			if err != nil {
				t.Fatalf("restore inside a batch: %v", err)
			}
			if inside.Seq != before.Seq || !strings.Contains(inside.Note, "inside the batch") {
				t.Fatalf("restore at %d (inside batch %d..%d) reached %d with note %q; want %d and a note", tx.LastSeq-1, tx.FirstSeq, tx.LastSeq, inside.Seq, inside.Note, before.Seq)
			}
			if err := loadgen.CompareMark(before, inside.Families); err != nil {
				t.Fatalf("restore inside a batch differs from the state before it: %v", err)
			}
			latest, err := e.restoreAt(0)
			if err != nil {
				t.Fatal(err)
			}
			if latest.Seq != final.Seq {
				t.Fatalf("newest restore reached %d, primary is at %d", latest.Seq, final.Seq)
			}
			if err := loadgen.CompareMark(final, latest.Families); err != nil {
				t.Fatalf("newest restore differs from the primary: %v", err)
			}
			if gens := e.generations(); len(gens) != 1 {
				t.Fatalf("a tailer that kept up made %d generations, want 1", len(gens))
			}
			kinds := e.gen.Counts()
			for _, k := range loadgen.Kinds() {
				if kinds[k] == 0 {
					t.Errorf("the load never wrote a %q transaction; the test covers less than it claims", k)
				}
			}
		})
	}
}
