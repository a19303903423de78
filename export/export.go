// Package export writes a full export (.texp): every key and value of
// every column family of a store opened read-only (a hard-linked snapshot
// of the primary), consistent at the view's sequence number, streamed
// family by family in key order with bounded memory. The trailer records
// each family's key count and digest, so a restore can prove it rebuilt
// the same state. It also records, per account, the newest Stalwart change
// id present in the changelog family, so `restore --change-id` can pick a
// base export without reading it whole.
package export

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/changelog"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/segment"
)

// Progress is called now and then while an export streams, and once at the
// end, with the running totals.
type Progress func(p Stats)

// Stats describes an export in progress or done.
type Stats struct {
	Family   string // family being read
	Keys     uint64 // keys written so far
	RawBytes int64  // key+value bytes read so far
	Written  int64  // bytes of the export object written so far
	Elapsed  time.Duration
}

// Result is what a finished export reports.
type Result struct {
	Seq     uint64
	Trailer segment.Trailer
	Stats   Stats
}

// Write streams st into w as an export at seq. hdr supplies the generation
// and DB identity; kind, sequence numbers, families and time are filled in.
func Write(ctx context.Context, st *store.Store, seq uint64, hdr segment.Header, w io.Writer, progress Progress) (Result, error) {
	start := time.Now()
	hdr.Kind = segment.KindExport
	hdr.FirstSeq, hdr.LastSeq = seq, seq
	hdr.Families = st.FamilyTable()
	if hdr.Created.IsZero() {
		hdr.Created = start.UTC()
	}
	ew, err := segment.NewExportWriter(w, hdr)
	if err != nil {
		return Result{}, fmt.Errorf("start export at seq %d: %w", seq, err)
	}
	var stats Stats
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetFillCache(false)
	lastReport := start
	accounts := map[uint32]uint64{}
	for i, f := range st.Families {
		stats.Family = f.Name
		isLog := f.Name == stalwart.ChangelogFamily
		it := st.DB.NewIteratorCF(ro, f.Handle)
		for it.SeekToFirst(); it.Valid(); it.Next() {
			k, v := it.Key().Data(), it.Value().Data()
			if isLog && len(v) > 0 { // an empty value is a purge's truncation marker
				if key, err := changelog.DecodeKey(k); err == nil {
					accounts[key.Account] = max(accounts[key.Account], key.ChangeID)
				}
			}
			if err := ew.Add(i, k, v); err != nil {
				it.Close()
				return Result{}, fmt.Errorf("export family %s: %w", f.Name, err)
			}
			stats.Keys++
			stats.RawBytes += int64(len(k) + len(v))
			if stats.Keys%4096 == 0 {
				if err := ctx.Err(); err != nil {
					it.Close()
					return Result{}, err
				}
				if progress != nil && time.Since(lastReport) >= time.Second {
					lastReport = time.Now()
					stats.Written, stats.Elapsed = ew.Written(), time.Since(start)
					progress(stats)
				}
			}
		}
		err := it.Err()
		it.Close()
		if err != nil {
			return Result{}, fmt.Errorf("read family %s for export: %w", f.Name, err)
		}
	}
	ew.SetAccountChanges(accounts)
	tr, err := ew.Close()
	if err != nil {
		return Result{}, fmt.Errorf("finish export at seq %d: %w", seq, err)
	}
	stats.Written, stats.Elapsed = ew.Written(), time.Since(start)
	if progress != nil {
		progress(stats)
	}
	return Result{Seq: seq, Trailer: tr, Stats: stats}, nil
}
