package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/blobship"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// BlobSummary sums up the blob objects of a replica that backs up a
// filesystem blob store.
type BlobSummary struct {
	Objects int   `json:"objects"`
	Bytes   int64 `json:"bytes"`
	// Referenced counts the blobs some kept point needs (an export's
	// manifest or a segment's commit key names them); the others are
	// left for retention to delete.
	Referenced   int `json:"referenced"`
	Unreferenced int `json:"unreferenced"`
}

// blobSet is what the LIST of blobs/ found. Only hashes are held, never
// a blob's content.
type blobSet struct {
	objs       []layout.Blob
	have       map[blobfs.Hash]bool
	referenced map[blobfs.Hash]bool
}

// listBlobs lists blobs/; nil when the replica keeps no blobs (no blob
// object and no manifest), so a replica of a store without a filesystem
// blob store is not held to the blob checks.
func listBlobs(ctx context.Context, r uploader.Replica, gens []layout.Generation, rep *Report) (*blobSet, error) {
	infos, err := r.List(ctx, layout.BlobsRoot)
	if err != nil {
		return nil, err
	}
	objs := make([]layout.Object, 0, len(infos))
	for _, o := range infos {
		objs = append(objs, layout.Object{Key: o.Key, Size: o.Size, Modified: o.Modified})
	}
	blobs, unknown := layout.ParseBlobs(objs)
	for _, k := range unknown {
		rep.Warnings = append(rep.Warnings, Problem{Object: k, Problem: "not an object tailer writes (left alone)"})
	}
	manifests := false
	for _, g := range gens {
		manifests = manifests || len(g.BlobManifests) > 0
	}
	if len(blobs) == 0 && !manifests {
		return nil, nil
	}
	s := &blobSet{objs: blobs, have: make(map[blobfs.Hash]bool, len(blobs)), referenced: map[blobfs.Hash]bool{}}
	for _, b := range blobs {
		s.have[b.Hash] = true
	}
	return s, nil
}

// references checks that every blob a point of g needs is in blobs/: the
// blobs each export's manifest lists (every export must have one) and
// those its segments' batches commit.
func (v *verifier) references(ctx context.Context, g layout.Generation, results []objResult) {
	type ref struct {
		by   string // the first object naming the blob
		more int    // how many more do
	}
	refs := map[blobfs.Hash]*ref{}
	add := func(h blobfs.Hash, by string) {
		if r, ok := refs[h]; ok {
			r.more++
			return
		}
		refs[h] = &ref{by: by}
	}
	manifests := map[uint64]layout.Export{}
	for _, m := range g.BlobManifests {
		manifests[m.Seq] = m
	}
	for _, e := range g.Exports {
		m, ok := manifests[e.Seq]
		if !ok {
			v.problem(g.ID, layout.BlobManifestKey(g.ID, e.Seq), "missing: the export %s has no blob manifest, so the blobs its point needs are unknown (tailer writes it before the export)", e.Key)
			continue
		}
		delete(manifests, e.Seq)
		hashes, err := readManifest(ctx, v.opts.Replica, m)
		if err != nil {
			v.problem(g.ID, m.Key, "%v", err)
			continue
		}
		for _, h := range hashes {
			add(h, m.Key)
		}
	}
	for _, m := range g.BlobManifests {
		if _, left := manifests[m.Seq]; !left {
			continue
		}
		v.warn(g.ID, m.Key, "a blob manifest without its export (an export on its way, or one deleted without its manifest)")
	}
	for _, r := range results {
		for _, h := range r.commits {
			add(h, r.key)
		}
	}
	hashes := make([]blobfs.Hash, 0, len(refs))
	for h := range refs {
		hashes = append(hashes, h)
	}
	slices.SortFunc(hashes, func(a, b blobfs.Hash) int { return bytes.Compare(a[:], b[:]) })
	for _, h := range hashes {
		r := refs[h]
		v.blobs.referenced[h] = true
		if v.blobs.have[h] {
			continue
		}
		by := r.by
		if r.more > 0 {
			by = fmt.Sprintf("%s and %d more", r.by, r.more)
		}
		v.problem(g.ID, layout.BlobKey(h), "missing: referenced by %s; a restore of those points lacks this blob (mail lost unless the server still has it)", by)
	}
}

// readManifest downloads and decodes one manifest, bounded.
func readManifest(ctx context.Context, r uploader.Replica, m layout.Export) ([]blobfs.Hash, error) {
	if m.Size > blobship.MaxManifestBytes {
		return nil, fmt.Errorf("%d bytes, larger than any blob manifest (%d)", m.Size, blobship.MaxManifestBytes)
	}
	rc, err := r.Get(ctx, m.Key)
	if errors.Is(err, uploader.ErrNotFound) {
		return nil, errors.New("listed, then not found: deleted while verify ran?")
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, blobship.MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if len(data) > blobship.MaxManifestBytes {
		return nil, fmt.Errorf("larger than any blob manifest (%d bytes)", blobship.MaxManifestBytes)
	}
	return blobship.DecodeManifest(data)
}

// checkBlobs downloads every blob object, Parallel at a time, and checks
// that it decodes (length, checksum) to a file that hashes to its name.
// One blob per worker is in memory at a time.
func (v *verifier) checkBlobs(ctx context.Context) {
	s := v.blobs
	sum := &BlobSummary{Objects: len(s.objs)}
	for _, b := range s.objs {
		sum.Bytes += b.Size
		if s.referenced[b.Hash] {
			sum.Referenced++
		}
	}
	sum.Unreferenced = sum.Objects - sum.Referenced
	v.rep.Blobs = sum
	v.opts.Log.Info("verifying blobs", "objects", sum.Objects, "bytes", sum.Bytes)
	problems := make([]string, len(s.objs))
	ch := make(chan int)
	var wg sync.WaitGroup
	for range min(v.opts.Parallel, len(s.objs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				problems[i] = checkBlob(ctx, v.opts.Replica, s.objs[i])
			}
		}()
	}
	for i := range s.objs {
		select {
		case ch <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(ch)
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	for i, p := range problems {
		if p != "" {
			v.problem("", s.objs[i].Key, "%s", p)
		}
	}
}

// checkBlob checks one blob object; "" when it is good.
func checkBlob(ctx context.Context, r uploader.Replica, b layout.Blob) string {
	rc, err := r.Get(ctx, b.Key)
	if errors.Is(err, uploader.ErrNotFound) {
		return "listed, then not found: deleted while verify ran?"
	}
	if err != nil {
		return fmt.Sprintf("cannot read: %v", err)
	}
	defer rc.Close()
	obj, err := io.ReadAll(io.LimitReader(rc, blobship.MaxBlobSize+1<<10))
	if err != nil {
		return fmt.Sprintf("cannot read: %v", err)
	}
	if int64(len(obj)) != b.Size {
		return fmt.Sprintf("the listing says %d bytes, the download has %d", b.Size, len(obj))
	}
	file, err := blobship.Decode(b.Key, obj)
	if err != nil {
		return "corrupt: " + strings.ReplaceAll(err.Error(), b.Key+": ", "")
	}
	if res := blobfs.VerifyBytes(file, b.Hash); res.Status != blobfs.Complete {
		return fmt.Sprintf("corrupt: does not hold the blob its name is the hash of (%s)", res.Why)
	}
	return ""
}

// familyID returns the id a segment's family table gives name.
func familyID(fams []segment.Family, name string) (uint32, bool) {
	for _, f := range fams {
		if f.Name == name {
			return f.ID, true
		}
	}
	return 0, false
}

// commitKeys appends the hash of every blob commit key (a put of a bare
// hash) the batch writes into family kID.
func commitKeys(data []byte, kID uint32, out *[]blobfs.Hash) error {
	return wbatch.Each(data, func(r wbatch.Record) error {
		if r.Op == wbatch.OpPut && r.CF == kID && len(r.Key) == blobfs.HashLen {
			*out = append(*out, blobfs.Hash(r.Key))
		}
		return nil
	})
}
