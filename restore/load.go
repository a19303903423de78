package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/internal/owned"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/segment"
)

// load streams the export into one SST file per family and ingests each.
// The export was verified by fetch; the reader checks its checksum again
// as it streams.
//
// progress (Options.Progress, may be nil) hears, as phase "load", the keys
// loaded against the export's record count.
func load(ctx context.Context, st *store.Store, exp *segment.Reader, dir string, log *slog.Logger, progress func(string, int64, int64)) (uint64, error) {
	if err := os.MkdirAll(dir, owned.DirMode); err != nil {
		return 0, fmt.Errorf("create %s: %w", dir, err)
	}
	fams := exp.Header().Families
	records := int64(exp.Trailer().Records)
	env := grocksdb.NewDefaultEnvOptions()
	defer env.Destroy()
	ingest := grocksdb.NewDefaultIngestExternalFileOptions()
	defer ingest.Destroy()
	ingest.SetMoveFiles(true)

	var (
		w       *grocksdb.SSTFileWriter
		wOpts   *grocksdb.Options
		current = -1
		inFile  uint64
		total   uint64
	)
	closeFamily := func() error {
		if w == nil {
			return nil
		}
		defer func() { w.Destroy(); destroyOptions(fams[current].Name, wOpts); w, wOpts = nil, nil }()
		if inFile == 0 {
			return nil
		}
		if err := w.Finish(); err != nil {
			return fmt.Errorf("finish SST for family %s: %w", fams[current].Name, err)
		}
		path := sstPath(dir, current)
		h := st.Handle(fams[current].Name)
		if err := st.DB.IngestExternalFileCF(h, []string{path}, ingest); err != nil {
			return fmt.Errorf("ingest family %s: %w", fams[current].Name, err)
		}
		log.Info("loaded family", "family", fams[current].Name, "keys", inFile)
		return nil
	}
	for {
		fi, key, value, err := exp.NextEntry()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		if fi != current {
			if err := closeFamily(); err != nil {
				return 0, err
			}
			if fi < 0 || fi >= len(fams) {
				return 0, fmt.Errorf("export names family index %d of %d", fi, len(fams))
			}
			current, inFile = fi, 0
			wOpts = stalwart.FamilyOptions(fams[fi].Name, true)
			w = grocksdb.NewSSTFileWriter(env, wOpts)
			if err := w.Open(sstPath(dir, fi)); err != nil {
				return 0, fmt.Errorf("open SST for family %s: %w", fams[fi].Name, err)
			}
		}
		if err := w.Add(key, value); err != nil {
			return 0, fmt.Errorf("write family %s: %w", fams[fi].Name, err)
		}
		inFile++
		total++
		if total%65536 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if progress != nil && total%4096 == 0 {
			progress("load", int64(total), records)
		}
	}
	if err := closeFamily(); err != nil {
		return 0, err
	}
	if progress != nil {
		progress("load", int64(total), records)
	}
	return total, nil
}

func sstPath(dir string, family int) string {
	return filepath.Join(dir, fmt.Sprintf("family-%03d.sst", family))
}

// verifyLoad proves the loaded store equals the export: every family's key
// count and digest, read back from RocksDB, match the export's trailer.
func verifyLoad(ctx context.Context, st *store.Store, exp *segment.Reader) error {
	got, err := st.Digests(ctx, nil)
	if err != nil {
		return err
	}
	have := map[string]segment.FamilySum{}
	for _, s := range got {
		have[s.Name] = s
	}
	for _, want := range exp.Trailer().Families {
		g := have[want.Name]
		if g.Keys != want.Keys || (want.Keys > 0 && g.Digest != want.Digest) {
			return fmt.Errorf("loaded family %s has %d keys (digest %.12s), the export recorded %d (digest %.12s): the load is wrong; report this as a bug", want.Name, g.Keys, g.Digest, want.Keys, want.Digest)
		}
	}
	return nil
}

// finish flushes the memtables (the replay skipped the WAL) so the store
// is durable before it is handed over.
func finish(st *store.Store) error {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	hs := make([]*grocksdb.ColumnFamilyHandle, 0, len(st.Families))
	for _, f := range st.Families {
		hs = append(hs, f.Handle)
	}
	if err := st.DB.FlushCFs(hs, fo); err != nil {
		return fmt.Errorf("flush restored store: %w", err)
	}
	return nil
}

// destroyOptions frees family options unless they carry the merge
// operator (see stalwart.OpenSpec.Destroy for why those must leak).
func destroyOptions(family string, o *grocksdb.Options) {
	if !stalwart.HasMergeOperator(family) {
		o.Destroy()
	}
}
