package dumpsource

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/setting"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/restore"
	"github.com/tailer-backup/tailer/secondary"
	"github.com/tailer-backup/tailer/snapshot"
	"github.com/tailer-backup/tailer/stalwartfmt"
)

// FromLive writes a Stalwart dump of the live store in db,
// consistent at one sequence number, without stopping Stalwart: the store
// is frozen from outside (hard links into scratch, as `tailer export`
// does; never a RocksDB secondary, which crashes on the blob family t) and
// the snapshot is removed afterwards. scratch must be on the store's
// filesystem and outside it ("" means db.tailer beside the store).
func FromLive(ctx context.Context, db, scratch, out string, opts stalwartfmt.Options) (stalwartfmt.Summary, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if db == "" {
		return stalwartfmt.Summary{}, setting.Missing("DB", "store directory", "point it at Stalwart's RocksDB directory")
	}
	if scratch == "" {
		scratch = secondary.DefaultScratch(db)
	}
	if err := secondary.CheckOutside(scratch, db); err != nil {
		return stalwartfmt.Summary{}, fmt.Errorf("%w %w", &setting.Error{Key: "Scratch", Name: "scratch directory"}, err)
	}
	if err := checkOutside(out, db); err != nil {
		return stalwartfmt.Summary{}, err
	}
	if err := stalwartfmt.CheckOut(out); err != nil {
		return stalwartfmt.Summary{}, err
	}
	snapDir := filepath.Join(scratch, "snapshots", "stalwart-export-"+time.Now().UTC().Format("20060102T150405.000000000"))
	frozen, err := snapshot.OpenFrozen(ctx, db, snapDir, log)
	if err != nil {
		return stalwartfmt.Summary{}, err
	}
	defer frozen.Close()
	log.Info("store frozen", "db", db, "seq", frozen.Seq)
	return stalwartfmt.WriteDump(ctx, frozen.Store, frozen.Seq, out, opts)
}

// FromReplica writes a Stalwart dump of a past point of a
// replica: the state restore.Run would produce for ro.Target, with the
// blobs of a filesystem blob store read from the replica's blobs/ (unless
// opts.Blobs names another source). It restores
// into a hidden temporary RocksDB directory beside out (ro.To is ignored;
// the space of one restored store is needed there for the duration), then
// writes the dump from it and removes it. Going through a real RocksDB keeps merges,
// range deletes and every WAL batch applied exactly as a restore does.
func FromReplica(ctx context.Context, ro restore.Options, out string, opts stalwartfmt.Options) (restore.Result, stalwartfmt.Summary, error) {
	if err := stalwartfmt.CheckOut(out); err != nil {
		return restore.Result{}, stalwartfmt.Summary{}, err
	}
	parent := filepath.Dir(filepath.Clean(out))
	if err := os.MkdirAll(parent, owned.DirMode); err != nil {
		return restore.Result{}, stalwartfmt.Summary{}, fmt.Errorf("create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".restore-")
	if err != nil {
		return restore.Result{}, stalwartfmt.Summary{}, fmt.Errorf("create temporary restore directory beside %s: %w", out, err)
	}
	defer os.RemoveAll(tmp)
	ro.To = filepath.Join(tmp, "db")
	if ro.Work == "" {
		ro.Work = filepath.Join(tmp, "work")
	}
	if ro.Log == nil {
		ro.Log = opts.Log
	}
	res, err := restore.Run(ctx, ro)
	if err != nil {
		return res, stalwartfmt.Summary{}, err
	}
	st, err := store.OpenReadOnly(ro.To)
	if err != nil {
		return res, stalwartfmt.Summary{}, fmt.Errorf("open the restored store: %w", err)
	}
	defer st.Close()
	if opts.Blobs == nil {
		// Blobs of a filesystem blob store, shipped to blobs/: the ones
		// family t of the restored store does not hold.
		rb, err := NewReplicaBlobs(ctx, ro.Replica)
		if err != nil {
			return res, stalwartfmt.Summary{}, err
		}
		if rb != nil {
			opts.Blobs = rb
		}
	}
	sum, err := stalwartfmt.WriteDump(ctx, st, res.Seq, out, opts)
	return res, sum, err
}

// checkOutside refuses an output directory inside the store's directory:
// tailer never writes there.
func checkOutside(out, db string) error {
	if err := secondary.CheckOutside(out, db); err != nil {
		return fmt.Errorf("%w %w", &setting.Error{Key: "Out", Name: "output directory"}, err)
	}
	return nil
}
