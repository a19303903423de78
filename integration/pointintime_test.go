package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/report"
	"github.com/tailer-backup/tailer/restore"
)

// TestRestoreByTimeAndChangeID: restores by capture time and by Stalwart
// change id land exactly on the batch the test recorded (equal to the
// primary's state there), the changelog read back from the replica holds
// the change at that batch, and a change id the replica does not hold is
// refused with the nearest ones it does.
func TestRestoreByTimeAndChangeID(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b, 3)
			e.load(200)
			e.startTailer()

			type timed struct {
				m  loadgen.Mark
				at time.Time
			}
			var byTime []timed
			type changed struct {
				tx loadgen.Tx
				m  loadgen.Mark
			}
			var byChange []changed
			for i := 0; i < 3; i++ {
				e.load(150)
				// Every batch up to m is captured before `at`, every later one
				// after it: the load resumes only once `at` has passed.
				m := e.mark()
				e.waitRestorable(m.Seq)
				at := time.Now()
				time.Sleep(20 * time.Millisecond)
				byTime = append(byTime, timed{m, at})

				tx := e.accountTx()
				byChange = append(byChange, changed{tx, e.mark()})
			}
			e.load(100)
			final := e.mark()
			e.waitRestorable(final.Seq)
			e.stopTailer()

			for _, c := range byTime {
				res := e.restoreBy(restore.Target{Time: c.at, HasTime: true})
				if res.Seq != c.m.Seq {
					t.Fatalf("restore --time %s reached %d, want %d (%s)", c.at.Format(time.RFC3339Nano), res.Seq, c.m.Seq, res.Why)
				}
				if err := loadgen.CompareMark(c.m, res.Families); err != nil {
					t.Fatalf("restore --time %s: %v", c.at.Format(time.RFC3339Nano), err)
				}
			}
			for _, c := range byChange {
				res := e.restoreBy(restore.Target{Account: c.tx.Account, ChangeID: c.tx.ChangeID, HasChange: true})
				if res.Seq != c.tx.LastSeq || res.Seq != c.m.Seq {
					t.Fatalf("restore --account %d --change-id %d reached %d, want %d (%s)", c.tx.Account, c.tx.ChangeID, res.Seq, c.tx.LastSeq, res.Why)
				}
				if err := loadgen.CompareMark(c.m, res.Families); err != nil {
					t.Fatalf("restore --account %d --change-id %d: %v", c.tx.Account, c.tx.ChangeID, err)
				}
				if !e.changelogHas(c.tx) {
					t.Fatalf("the replica's changelog has no change %d of account %d at seq %d", c.tx.ChangeID, c.tx.Account, c.tx.LastSeq)
				}
			}
			last := byChange[len(byChange)-1].tx
			_, err := restore.Run(context.Background(), restore.Options{Replica: e.replica, To: filepath.Join(e.dir, "nope"),
				Target: restore.Target{Account: last.Account, ChangeID: 1 << 40, HasChange: true}})
			if err == nil || !strings.Contains(err.Error(), "not in the replica") || !strings.Contains(err.Error(), "nearest") {
				t.Fatalf("restore to a change id the replica does not hold: %v, want a refusal naming the nearest ids", err)
			}
			gen, newest, err := report.AccountChanges(context.Background(), e.replica)
			if err != nil {
				t.Fatal(err)
			}
			if newest[last.Account] < last.ChangeID {
				t.Fatalf("list --accounts (generation %s) says account %d is at change %d, but %d was shipped", gen, last.Account, newest[last.Account], last.ChangeID)
			}
		})
	}
}

// accountTx writes transactions until one touches an account's changelog.
func (e *env) accountTx() loadgen.Tx {
	e.t.Helper()
	for {
		tx, err := e.gen.Tx(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if tx.Account != 0 && tx.ChangeID != 0 {
			return tx
		}
	}
}

func (e *env) restoreBy(tgt restore.Target) restore.Result {
	e.t.Helper()
	res, err := restore.Run(context.Background(), restore.Options{Replica: e.replica,
		To: filepath.Join(e.dir, fmt.Sprintf("restore-%d", time.Now().UnixNano())), Target: tgt, Digests: true, VerifyLoad: true, Log: testLogger(e.t)})
	if err != nil {
		e.t.Fatalf("restore %+v: %v", tgt, err)
	}
	return res
}

// changelogHas reports whether `tailer changes` would list the change.
func (e *env) changelogHas(tx loadgen.Tx) bool {
	found := false
	acct := tx.Account
	err := report.Changes(context.Background(), e.replica, report.ChangeFilter{Account: &acct}, func(c report.Change) error {
		if c.ChangeID == tx.ChangeID && c.LastSeq == tx.LastSeq {
			found = true
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return found
}
