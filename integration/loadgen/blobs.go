package loadgen

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
)

// fakeEpoch is the generator's clock for temporary links' expiry: a fixed
// time plus one second per transaction, so content stays a function of
// the seed.
const fakeEpoch = 1_700_000_000

// tempLinkTTL is how long Stalwart's ingest holds a blob with a temporary
// link (put_temporary_blob(…, 60)).
const tempLinkTTL = 60

// openBlobDir prepares the blob store directory: absent or empty only.
func openBlobDir(dir string, depth int) (*blobfs.Layout, error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("loadgen: %w", err)
	case len(entries) > 0:
		return nil, fmt.Errorf("loadgen: blob directory %s is not empty; remove it or name another", dir)
	}
	l, err := blobfs.NewLayout(dir, depth)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return &l, nil
}

// writeNow writes one batch of its own at once (the steps of a blob
// upload that Stalwart commits separately from the message).
func (b *builder) writeNow(fill func(wb *grocksdb.WriteBatch)) {
	if b.err != nil {
		return
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	fill(wb)
	b.extra += wb.Count()
	if err := b.g.s.DB.Write(b.g.wo, wb); err != nil {
		b.err = err
	}
}

// storeBlob stores a new message body. In family t (the default) the
// value and its commit key go into the transaction's batch. In a blob
// directory it follows Stalwart's put_temporary_blob: a temporary link
// (batch of its own), the file, the commit key (another batch); the
// message's batch then clears the temporary link.
func (b *builder) storeBlob(hash blobfs.Hash, payload []byte, owner uint32) {
	g := b.g
	if g.blobs == nil {
		g.wb.PutCF(g.h.t, hash[:], blobfs.Encode(payload, false))
		g.wb.PutCF(g.h.k, bloblink.CommitKey(hash), nil)
		return
	}
	temp := bloblink.TemporaryKey(hash, owner, uint64(fakeEpoch+b.tx.N+tempLinkTTL))
	compress := b.rng.IntN(2) == 0
	chunks := 2 + b.rng.IntN(2)
	b.writeNow(func(wb *grocksdb.WriteBatch) { wb.PutCF(g.h.k, temp, nil) })
	if b.err == nil {
		b.err = b.writeBlobFile(g.blobs.Path(hash), blobfs.Encode(payload, compress), chunks)
	}
	b.writeNow(func(wb *grocksdb.WriteBatch) { wb.PutCF(g.h.k, bloblink.CommitKey(hash), nil) })
	g.wb.DeleteCF(g.h.k, temp)
}

// writeBlobFile writes a blob file as Stalwart's FsStore does: the level
// directories, File::create, the bytes (here in chunks writes), no
// temporary name, no rename, no fsync.
func (b *builder) writeBlobFile(path string, data []byte, chunks int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	step := (len(data) + chunks - 1) / chunks
	for off := 0; off < len(data); off += step {
		if off > 0 && b.g.cfg.BetweenBlobWrites != nil {
			b.g.cfg.BetweenBlobWrites(path)
		}
		if _, err := f.Write(data[off:min(off+step, len(data))]); err != nil {
			return err
		}
	}
	return f.Close()
}

// purgeBlob deletes a blob no link holds. In family t: its value and
// commit key, in the transaction's batch. In a blob directory, as
// Stalwart's purge does, after the transaction's batch: the file first,
// then the commit key.
func (b *builder) purgeBlob(hash blobfs.Hash) {
	g := b.g
	if g.blobs == nil {
		g.wb.DeleteCF(g.h.t, hash[:])
		g.wb.DeleteCF(g.h.k, bloblink.CommitKey(hash))
		return
	}
	b.after = append(b.after, func() {
		if b.err != nil {
			return
		}
		if err := os.Remove(g.blobs.Path(hash)); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.err = err
			return
		}
		b.writeNow(func(wb *grocksdb.WriteBatch) { wb.DeleteCF(g.h.k, bloblink.CommitKey(hash)) })
	})
}

// BlobsMark is the blob store's part of a mark: the blobs the store
// references (committed and linked in k) and a digest of their files.
type BlobsMark struct {
	Names  []string `json:"names"`
	Digest string   `json:"digest"`
}

// blobsMark reads k as of snap and digests the referenced files.
func (g *Generator) blobsMark(ctx context.Context, snap *grocksdb.Snapshot) (*BlobsMark, error) {
	refs, _, err := bloblink.Read(ctx, g.s, snap)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range refs {
		if r.Required(0) {
			names = append(names, r.Hash.Name())
		}
	}
	digest, missing, err := BlobsDigest(*g.blobs, names)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("loadgen: %d referenced blobs have no file, e.g. %s", len(missing), missing[0])
	}
	return &BlobsMark{Names: names, Digest: digest}, nil
}

// BlobsDigest digests the files of the named blobs in l (SHA-256 over
// each name, length and content, in name order) and lists the names
// that have no file.
func BlobsDigest(l blobfs.Layout, names []string) (digest string, missing []string, err error) {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	h := sha256.New()
	for _, name := range sorted {
		hash, err := blobfs.ParseName(name)
		if err != nil {
			return "", nil, fmt.Errorf("loadgen: %w", err)
		}
		f, err := os.Open(l.Path(hash))
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("loadgen: %w", err)
		}
		st, err := f.Stat()
		if err == nil {
			io.WriteString(h, name)
			h.Write(binary.BigEndian.AppendUint64(nil, uint64(st.Size())))
			_, err = io.Copy(h, f)
		}
		f.Close()
		if err != nil {
			return "", nil, fmt.Errorf("loadgen: read blob %s: %w", name, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), missing, nil
}

// CompareBlobs checks a blob store (a restore's) against a mark: every
// referenced blob present with the mark's content. Blobs beyond the
// mark's are not an error (a restore may bring back dead ones).
func CompareBlobs(m Mark, l blobfs.Layout) error {
	if m.Blobs == nil {
		return fmt.Errorf("mark at seq %d has no blob store part (written without a blob directory)", m.Seq)
	}
	digest, missing, err := BlobsDigest(l, m.Blobs.Names)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("blob store %s lacks %d of the %d blobs the mark at seq %d references, e.g. %s", l.Root, len(missing), len(m.Blobs.Names), m.Seq, missing[0])
	}
	if digest != m.Blobs.Digest {
		return fmt.Errorf("blob store %s: the %d blobs the mark at seq %d references differ in content (digest %s, mark %s)", l.Root, len(m.Blobs.Names), m.Seq, digest, m.Blobs.Digest)
	}
	return nil
}
