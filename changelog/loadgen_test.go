package changelog_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/changelog"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
)

// TestLoadgenCrossCheck decodes every `l` record the load generator writes
// in a few hundred transactions, read back from the store's WAL as tailer
// reads it: every put must decode (the generator encodes values with its
// own code, this package decodes them from the spec), re-encode to the
// same bytes, and agree with what the generator says it wrote.
func TestLoadgenCrossCheck(t *testing.T) {
	const txs = 400
	type written struct {
		tx    loadgen.Tx
		batch segment.Batch
	}
	var (
		got []written
		g   *loadgen.Generator
	)
	cfg := loadgen.Config{
		Dir:            filepath.Join(t.TempDir(), "primary"),
		Seed:           7,
		Accounts:       6,
		ChangesHistory: 8, // purges within a few hundred transactions
		AfterTx: func(tx loadgen.Tx) error {
			// Read the batch back right away, while its WAL file is live.
			it, err := g.Store().DB.GetUpdatesSince(tx.FirstSeq)
			if err != nil {
				return err
			}
			defer it.Destroy()
			if !it.Valid() {
				t.Fatalf("tx %d: no WAL batch at seq %d: %v", tx.N, tx.FirstSeq, it.Err())
			}
			wb, seq := it.GetBatch()
			data := bytes.Clone(wb.Data())
			wb.Destroy()
			if seq != tx.FirstSeq {
				t.Fatalf("tx %d: WAL batch at seq %d, want %d", tx.N, seq, tx.FirstSeq)
			}
			got = append(got, written{tx, segment.Batch{Seq: seq, CaptureUnixMs: int64(tx.N), Data: data}})
			return nil
		},
	}
	g, err := loadgen.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if n, err := g.Run(context.Background(), txs, 0); err != nil || n != txs {
		t.Fatalf("Run = %d, %v", n, err)
	}

	var fams []segment.Family
	for _, f := range g.Store().Families {
		fams = append(fams, segment.Family{ID: f.Handle.ID(), Name: f.Name})
	}
	lFamily, ok := changelog.FamilyID(fams)
	if !ok {
		t.Fatal("the generator's store has no l family")
	}

	labeler := changelog.NewLabeler(lFamily)
	var total changelog.Stats
	puts, purgeTxs := 0, 0
	for _, w := range got {
		tx, b := w.tx, w.batch
		changes, purges, st, err := changelog.Scan(b, lFamily)
		if err != nil {
			t.Fatalf("tx %d: %v", tx.N, err)
		}
		total.Add(st)
		if err := labeler.Add(b); err != nil {
			t.Fatalf("tx %d: %v", tx.N, err)
		}

		// Every put in l decodes and re-encodes to the generator's bytes.
		err = wbatch.Each(b.Data, func(r wbatch.Record) error {
			if r.CF != lFamily || r.Op != wbatch.OpPut {
				return nil
			}
			puts++
			e, err := changelog.DecodeEntry(r.Key, r.Value)
			if err != nil {
				t.Errorf("tx %d (%s): %v", tx.N, tx.Kind, err)
				return nil
			}
			var again []byte
			switch {
			case e.Changes != nil:
				again = changelog.EncodeChangeSet(*e.Changes)
			case e.Vanished != nil:
				again = changelog.EncodeVanished(e.Vanished)
			case e.Truncation:
			default:
				t.Errorf("tx %d: %v is opaque", tx.N, e.Key)
			}
			if !bytes.Equal(again, r.Value) {
				t.Errorf("tx %d: %v re-encodes to % x, written % x", tx.N, e.Key, again, r.Value)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		// One change id per account per batch, and the one the generator
		// reports for its first account.
		ids := map[uint32]uint64{}
		for _, c := range changes {
			if c.Truncation {
				continue
			}
			if c.Inserts+c.Updates+c.Deletes == 0 {
				t.Errorf("tx %d (%s): empty change %+v", tx.N, tx.Kind, c)
			}
			if id, ok := ids[c.Account]; ok && id != c.ChangeID {
				t.Errorf("tx %d: account %d has change ids %d and %d in one batch", tx.N, c.Account, id, c.ChangeID)
			}
			ids[c.Account] = c.ChangeID
			if c.Seq != tx.FirstSeq || c.LastSeq != tx.LastSeq {
				t.Errorf("tx %d: change seqs %d..%d, batch %d..%d", tx.N, c.Seq, c.LastSeq, tx.FirstSeq, tx.LastSeq)
			}
		}
		if tx.ChangeID != 0 && ids[tx.Account] != tx.ChangeID {
			t.Errorf("tx %d (%s): account %d change %d not found in %+v", tx.N, tx.Kind, tx.Account, tx.ChangeID, changes)
		}
		switch tx.Kind {
		case loadgen.KindDelivery:
			if !hasChange(changes, func(c changelog.Change) bool { return c.Collection == changelog.Email && c.Inserts > 0 }) {
				t.Errorf("tx %d: delivery without email inserts: %+v", tx.N, changes)
			}
		case loadgen.KindFlagChange:
			if !hasChange(changes, func(c changelog.Change) bool { return c.Collection == changelog.Email && c.Updates > 0 }) {
				t.Errorf("tx %d: flag change without email updates: %+v", tx.N, changes)
			}
		case loadgen.KindExpunge:
			if !hasChange(changes, func(c changelog.Change) bool { return c.Deletes > 0 }) {
				t.Errorf("tx %d: expunge without deletes: %+v", tx.N, changes)
			}
		case loadgen.KindChangelogPurge:
			purgeTxs++
			// DeleteRange [0, keep) then the marker at keep, as Stalwart.
			if len(purges) != 1 || len(changes) != 1 || !changes[0].Truncation {
				t.Fatalf("tx %d: purge decoded as %+v and %+v", tx.N, purges, changes)
			}
			p, m := purges[0], changes[0]
			if !p.SingleCollection() || p.FromChange != 0 || p.Account != m.Account || p.Collection != m.Collection || p.ToChange != m.ChangeID {
				t.Errorf("tx %d: purge %+v does not end at its marker %+v", tx.N, p, m)
			}
		default:
			if len(changes)+len(purges) != 0 {
				t.Errorf("tx %d (%s): changelog records %+v %+v", tx.N, tx.Kind, changes, purges)
			}
		}
	}
	if total.Malformed != 0 || total.UnknownCollections != 0 || total.Other != 0 {
		t.Errorf("stats over %d transactions: %+v", txs, total)
	}
	if total != labeler.Stats() {
		t.Errorf("labeler stats %+v, summed %+v", labeler.Stats(), total)
	}
	if puts == 0 || puts != total.Entries || purgeTxs == 0 || total.Purges != purgeTxs || total.Truncations != purgeTxs {
		t.Errorf("%d puts, %d purge transactions, stats %+v: the run did not exercise the changelog", puts, purgeTxs, total)
	}

	// The labeler's newest change id per account is the counter in n.
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	accounts := labeler.AccountChanges()
	if len(accounts) == 0 {
		t.Fatal("no account changes")
	}
	for acct, id := range accounts {
		v, err := g.Store().DB.GetCF(ro, g.Store().Handle("n"), binary.BigEndian.AppendUint32(nil, acct))
		if err != nil {
			t.Fatal(err)
		}
		stored := v.Data()
		if len(stored) != 8 || binary.LittleEndian.Uint64(stored) != id {
			t.Errorf("account %d: newest change %d, n holds % x", acct, id, stored)
		}
		v.Free()
	}
	labels := labeler.Labels()
	for i, l := range labels {
		if l.MaxChange > accounts[l.Account] || l.MinChange > l.MaxChange {
			t.Errorf("label %+v beyond account change %d", l, accounts[l.Account])
		}
		if i > 0 && (labels[i-1].Account > l.Account || labels[i-1].Account == l.Account && labels[i-1].Collection >= l.Collection) {
			t.Errorf("labels not sorted at %d: %+v", i, labels)
		}
	}
	if lo, hi := labeler.CaptureRange(); lo != 0 || hi != txs-1 {
		t.Errorf("capture range %d..%d, want 0..%d", lo, hi, txs-1)
	}
	t.Logf("%d transactions (%v): %d l puts, %+v, %d labels", txs, g.Counts(), puts, total, len(labels))
}

func hasChange(cs []changelog.Change, f func(changelog.Change) bool) bool {
	for _, c := range cs {
		if f(c) {
			return true
		}
	}
	return false
}
