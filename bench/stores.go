package bench

import (
	"context"
	"errors"
	"fmt"
	"github.com/tailer-backup/tailer/internal/progress"
	"os"
	"path/filepath"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/integration/loadgen"
)

// StoreResult compares, on one store, tailer's full export and restore
// with today's workarounds: a RocksDB checkpoint + `tar | zstd -3`, a
// copy back of the checkpoint (the physical floor for a restore) and
// RocksDB's BackupEngine.
type StoreResult struct {
	Target     int64   `json:"target_bytes"`
	StoreBytes int64   `json:"store_bytes"` // the primary's directory after a flush
	Tx         int     `json:"tx"`
	BuildSecs  float64 `json:"build_s"`

	Export      Proc  `json:"tailer_export"`
	ExportBytes int64 `json:"tailer_export_bytes"`
	Restore     Proc  `json:"tailer_restore"`

	CheckpointSecs float64 `json:"checkpoint_s"`
	TarZstd        Proc    `json:"tar_zstd"` // of the checkpoint
	TarZstdBytes   int64   `json:"tar_zstd_bytes"`
	UntarSecs      float64 `json:"untar_s"` // zstd -d | tar -x back into a directory
	CopyBackSecs   float64 `json:"copy_back_s"`
	BackupSecs     float64 `json:"backup_engine_backup_s"`
	BackupRestSecs float64 `json:"backup_engine_restore_s"`
}

// ExportTimeRatio is tailer's export time ÷ checkpoint + tar | zstd.
func (s StoreResult) ExportTimeRatio() float64 {
	return s.Export.Seconds / (s.CheckpointSecs + s.TarZstd.Seconds)
}

// ExportBytesRatio is tailer's export size ÷ the .tar.zst's.
func (s StoreResult) ExportBytesRatio() float64 {
	return float64(s.ExportBytes) / float64(s.TarZstdBytes)
}

var errEnough = errors.New("store reached its target size")

// runStore builds a primary of about size bytes and measures every export
// and restore on it. tailer runs as a subprocess (export while the
// primary is open, as it would be beside a running Stalwart), so its peak
// RSS is its own.
func runStore(ctx context.Context, o Options, size int64) (*StoreResult, error) {
	dir := filepath.Join(o.Work, fmt.Sprintf("store-%d", size))
	os.RemoveAll(dir)
	if !o.Keep {
		defer os.RemoveAll(dir)
	}
	res := &StoreResult{Target: size}
	db := filepath.Join(dir, "primary")
	// Check the size often enough that a small store does not overshoot
	// to the next size up (tests use a few MiB), rarely enough that
	// walking a large store's directory stays cheap.
	every := 50
	if size >= 256<<20 {
		every = 1000
	}
	n := 0
	g, err := loadgen.Open(loadgen.Config{Dir: db, Seed: o.Seed, WriteBufferSize: 16 << 20, MaxTotalWALSize: -1,
		AfterTx: func(loadgen.Tx) error {
			n++
			if n%every == 0 && dirSize(db) >= size {
				return errEnough
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	t0 := time.Now()
	// The directory shrinks when a flush drops the WAL and compactions
	// merge files: write until the flushed store itself reaches size.
	for {
		if _, err := g.Run(ctx, 0, 0); !errors.Is(err, errEnough) {
			return nil, fmt.Errorf("build a %d-byte store: %v", size, err)
		}
		if err := g.Flush(); err != nil {
			return nil, err
		}
		if dirSize(db) >= size {
			break
		}
	}
	res.BuildSecs, res.Tx, res.StoreBytes = time.Since(t0).Seconds(), g.TxCount(), dirSize(db)
	o.progress("  built %s store (%d tx) in %.1fs", progress.HumanBytes(res.StoreBytes), res.Tx, res.BuildSecs)

	// tailer export, hot: the primary stays open.
	rep := filepath.Join(dir, "replica")
	if res.Export, err = measure(ctx, nil, o.Bin, "export", "--db", db, "--scratch", filepath.Join(dir, "scratch"),
		"--replica", "file://"+rep, "--log-level", "warn", "--log-format", "text"); err != nil {
		return nil, err
	}
	res.ExportBytes = dirSize(rep)

	// Today's workaround: checkpoint (hard links) then tar | zstd -3.
	ck := filepath.Join(dir, "checkpoint")
	t0 = time.Now()
	cp, err := g.Store().DB.NewCheckpoint()
	if err != nil {
		return nil, err
	}
	err = cp.CreateCheckpoint(ck, 0)
	cp.Destroy()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	res.CheckpointSecs = time.Since(t0).Seconds()
	tarball := filepath.Join(dir, "checkpoint.tar.zst")
	if res.TarZstd, err = measure(ctx, nil, "sh", "-c", `tar -C "$1" -cf - . | zstd -3 -q -o "$2"`, "sh", ck, tarball); err != nil {
		return nil, err
	}
	res.TarZstdBytes = dirSize(tarball)

	// BackupEngine of the same open store.
	bdir := filepath.Join(dir, "backup-engine")
	be, err := grocksdb.CreateBackupEngineWithPath(g.Store().DB, bdir)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	err = be.CreateNewBackup()
	be.Close()
	if err != nil {
		return nil, fmt.Errorf("BackupEngine backup: %w", err)
	}
	res.BackupSecs = time.Since(t0).Seconds()
	g.Close() // restores need no primary; free its memory

	if res.Restore, err = measure(ctx, nil, o.Bin, "restore", "--replica", "file://"+rep, "--to", filepath.Join(dir, "restored-tailer"),
		"--log-level", "warn", "--log-format", "text"); err != nil {
		return nil, err
	}
	r, err := measure(ctx, nil, "cp", "-a", ck, filepath.Join(dir, "restored-copy"))
	if err != nil {
		return nil, err
	}
	res.CopyBackSecs = r.Seconds
	r, err = measure(ctx, nil, "sh", "-c", `mkdir -p "$2" && zstd -dcq "$1" | tar -C "$2" -xf -`, "sh", tarball, filepath.Join(dir, "restored-tar"))
	if err != nil {
		return nil, err
	}
	res.UntarSecs = r.Seconds
	opts := grocksdb.NewDefaultOptions()
	defer opts.Destroy()
	be, err = grocksdb.OpenBackupEngine(opts, bdir)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	ro := grocksdb.NewRestoreOptions()
	defer ro.Destroy()
	to := filepath.Join(dir, "restored-backup-engine")
	t0 = time.Now()
	if err := be.RestoreDBFromLatestBackup(to, to, ro); err != nil {
		return nil, fmt.Errorf("BackupEngine restore: %w", err)
	}
	res.BackupRestSecs = time.Since(t0).Seconds()
	return res, nil
}
