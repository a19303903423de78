package blobship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/blobfs"
	"github.com/tailer-backup/tailer/bloblink"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/uploader"
)

func fileReplica(t *testing.T) uploader.Replica {
	t.Helper()
	r, err := uploader.Open(context.Background(), "file://"+t.TempDir(), uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestFormatRoundTrip(t *testing.T) {
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	text := bytes.Repeat([]byte("Received: from mx.example.org\r\n"), 2000)
	tests := []struct {
		name    string
		file    []byte
		wantEnc byte
	}{
		{"text mail, compressed", blobfs.Encode(text, false), encZstd},
		// A frame's window (1 KiB at least) can exceed its content: the
		// decoder must not be limited to the content's size.
		{"tiny text, compressed", blobfs.Encode(bytes.Repeat([]byte("x"), 100), false), encZstd},
		{"LZ4 blob, stored as is", blobfs.Encode(randomBytes(1, 20000), true), encStored},
		{"random, stored", blobfs.Encode(randomBytes(2, 5000), false), encStored},
		{"one byte", []byte{0}, encStored},
	}
	for _, tc := range tests {
		obj := enc.Encode(tc.file)
		if obj[5] != tc.wantEnc {
			t.Errorf("%s: encoding %d, want %d", tc.name, obj[5], tc.wantEnc)
		}
		got, err := Decode("k", obj)
		if err != nil || !bytes.Equal(got, tc.file) {
			t.Fatalf("%s: Decode = %d bytes, %v", tc.name, len(got), err)
		}
	}
}

func TestFormatRejectsDamage(t *testing.T) {
	enc, _ := NewEncoder()
	text := blobfs.Encode(bytes.Repeat([]byte("body line\r\n"), 500), false)
	good := enc.Encode(text)
	stored := enc.Encode(randomBytes(3, 300))
	damage := func(obj []byte, f func([]byte)) []byte {
		b := bytes.Clone(obj)
		f(b)
		return b
	}
	tests := map[string][]byte{
		"truncated header":     good[:10],
		"truncated body":       good[:len(good)-3],
		"bad magic":            damage(good, func(b []byte) { b[0] = 'X' }),
		"newer version":        damage(good, func(b []byte) { b[4] = 2 }),
		"unknown encoding":     damage(good, func(b []byte) { b[5] = 9 }),
		"wrong length":         damage(good, func(b []byte) { b[6]++ }),
		"huge length":          damage(good, func(b []byte) { b[13] = 0x10 }),
		"flipped stored byte":  damage(stored, func(b []byte) { b[headerLen+5] ^= 1 }),
		"flipped zstd byte":    damage(good, func(b []byte) { b[len(b)/2] ^= 0x40 }),
		"flipped checksum bit": damage(good, func(b []byte) { b[14] ^= 1 }),
	}
	for name, obj := range tests {
		if _, err := Decode("blobs/x", obj); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "blobs/x") {
			t.Errorf("%s: Decode = %v, want ErrFormat naming the object", name, err)
		}
	}
}

// store is a blob store with files written as Stalwart writes them.
type testStore struct {
	t *testing.T
	l blobfs.Layout
}

func newStore(t *testing.T, depth int) testStore {
	l, err := blobfs.NewLayout(t.TempDir(), depth)
	if err != nil {
		t.Fatal(err)
	}
	return testStore{t, l}
}

func (s testStore) put(payload []byte, compress bool) blobfs.Entry {
	s.t.Helper()
	h := blobfs.Sum(payload)
	p := s.l.Path(h)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, blobfs.Encode(payload, compress), 0o644); err != nil {
		s.t.Fatal(err)
	}
	e, ok, err := s.l.EntryAt(p)
	if !ok || err != nil {
		s.t.Fatalf("EntryAt(%s) = %v, %v", p, ok, err)
	}
	return e
}

func TestShipperOffer(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 2)
	r := fileReplica(t)
	now := time.Now()
	sh, err := NewShipper(ctx, ShipperOptions{Layout: s.l, Replica: r, Settle: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	mail := s.put([]byte("Subject: one\r\n\r\nhello"), true)
	offer := func(e blobfs.Entry, want Outcome) {
		t.Helper()
		got, err := sh.Offer(ctx, e)
		if err != nil || got != want {
			t.Fatalf("Offer(%s) = %v, %v; want %v", e.Name(), got, err, want)
		}
	}
	offer(mail, Uploaded)
	offer(mail, Present)

	// A file being written: pending until complete, then uploaded by the
	// retry.
	payload := randomBytes(4, 10000)
	part := s.put(payload, false)
	full, _ := os.ReadFile(part.Path)
	if err := os.WriteFile(part.Path, full[:4000], 0o644); err != nil {
		t.Fatal(err)
	}
	offer(part, Pending)
	if sh.PendingCount() != 1 || sh.Has(part.Hash) {
		t.Fatal("a half-written blob is not pending")
	}
	if err := os.WriteFile(part.Path, full, 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := sh.RetryPending(ctx); n != 0 || err != nil || !sh.Has(part.Hash) {
		t.Fatalf("RetryPending = %d, %v; has %v", n, err, sh.Has(part.Hash))
	}

	// A file that stays wrong: abandoned once the settle time passed.
	bad := s.put([]byte("will be cut"), false)
	if err := os.WriteFile(bad.Path, []byte("will"), 0o644); err != nil {
		t.Fatal(err)
	}
	offer(bad, Pending)
	now = now.Add(time.Hour)
	offer(bad, Abandoned)
	if sh.PendingCount() != 0 {
		t.Fatal("an abandoned blob is still pending")
	}

	// Gone (purged) and non-hash keys.
	gone := s.put([]byte("purged"), false)
	os.Remove(gone.Path)
	offer(gone, Gone)
	offer(blobfs.Entry{Key: []byte("STALWART_SPAM_CLASSIFIER_MODEL.lz4"), Path: "x"}, NotContentAddressed)

	// The replica holds exactly the two complete blobs, and a new shipper
	// knows them from its LIST.
	have, err := Listed(ctx, r)
	if err != nil || len(have) != 2 {
		t.Fatalf("replica holds %v, %v", have, err)
	}
	sh2, err := NewShipper(ctx, ShipperOptions{Layout: s.l, Replica: r})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sh2.Offer(ctx, mail); got != Present || err != nil {
		t.Fatalf("second shipper: %v, %v", got, err)
	}
}

func TestShipperRun(t *testing.T) {
	s := newStore(t, 1)
	r := fileReplica(t)
	before := s.put([]byte("before"), false)
	sh, err := NewShipper(context.Background(), ShipperOptions{Layout: s.l, Replica: r})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx, RunOptions{Scan: time.Hour, Retry: 10 * time.Millisecond}) }()
	var later []blobfs.Entry
	for i := range 10 {
		later = append(later, s.put(fmt.Appendf(nil, "message %d", i), i%2 == 0))
	}
	for _, e := range append(later, before) {
		for deadline := time.Now().Add(10 * time.Second); !sh.Has(e.Hash); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("blob %s was not shipped", e.Name())
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRestore(t *testing.T) {
	ctx := context.Background()
	key, err := uploader.RawKey(randomBytes(9, uploader.KeyLen))
	if err != nil {
		t.Fatal(err)
	}
	plain := fileReplica(t)
	r, err := uploader.Encrypted(plain, key)
	if err != nil {
		t.Fatal(err)
	}
	src := newStore(t, 2)
	sh, err := NewShipper(ctx, ShipperOptions{Layout: src.l, Replica: r})
	if err != nil {
		t.Fatal(err)
	}
	const now = 1_000_000
	var refs []bloblink.Ref
	var shipped []blobfs.Entry
	for i := range 6 {
		e := src.put(append([]byte(fmt.Sprintf("mail %d ", i)), bytes.Repeat([]byte("x"), i*1000)...), i%2 == 1)
		if _, err := sh.Offer(ctx, e); err != nil {
			t.Fatal(err)
		}
		shipped = append(shipped, e)
		refs = append(refs, bloblink.Ref{Hash: e.Hash, Committed: true, Documents: 1, Owner: uint32(i), HasOwner: true})
	}
	lost := blobfs.Sum([]byte("never shipped"))
	dead := blobfs.Sum([]byte("dead"))
	inflight := blobfs.Sum([]byte("in flight"))
	refs = append(refs,
		bloblink.Ref{Hash: lost, Committed: true, Documents: 1, Owner: 42, HasOwner: true},
		bloblink.Ref{Hash: dead, Committed: true},                                                     // awaiting the purge
		bloblink.Ref{Hash: inflight, Temporaries: 1, LatestUntil: now + 60, Owner: 7, HasOwner: true}, // no commit yet
	)
	// Damage one object in the bucket (below the encryption): reported
	// as missing, not written.
	damagedKey := layout.BlobKey(shipped[2].Hash)
	rc, err := plain.Get(ctx, damagedKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := io.ReadAll(rc)
	rc.Close()
	sealed[len(sealed)-20] ^= 1
	if err := plain.Put(ctx, damagedKey, bytes.NewReader(sealed), int64(len(sealed))); err != nil {
		t.Fatal(err)
	}

	dst, err := blobfs.NewLayout(filepath.Join(t.TempDir(), "restored"), 2)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Restore(ctx, RestoreOptions{Replica: r, Layout: dst, Refs: refs, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Written != 5 || rep.Optional != 2 || len(rep.Missing) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if rep.Missing[0].Hash != shipped[2].Hash || rep.Missing[1].Hash != lost || !strings.Contains(rep.Missing[1].Owner, "account 42") {
		t.Fatalf("missing %+v", rep.Missing)
	}
	if err := rep.Err(); !errors.Is(err, ErrMissingBlobs) {
		t.Fatalf("Err = %v", err)
	}
	for i, e := range shipped {
		if i == 2 {
			continue
		}
		want, _ := os.ReadFile(e.Path)
		got, err := os.ReadFile(dst.Path(e.Hash))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("restored %s differs from the original (%v)", e.Name(), err)
		}
	}
	// Again: everything already there is verified and left alone.
	rep, err = Restore(ctx, RestoreOptions{Replica: r, Layout: dst, Refs: refs, Now: now})
	if err != nil || rep.Present != 5 || rep.Written != 0 {
		t.Fatalf("second restore %+v, %v", rep, err)
	}
	// A different file under a blob's name is never overwritten.
	victim := dst.Path(shipped[0].Hash)
	if err := os.WriteFile(victim, []byte("operator's file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, RestoreOptions{Replica: r, Layout: dst, Refs: refs, Now: now}); !errors.Is(err, ErrExists) {
		t.Fatalf("restore over a foreign file = %v, want ErrExists", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "operator's file" {
		t.Fatal("the foreign file was overwritten")
	}
}

// TestRestoreWorkersNoList restores many blobs with several workers, with
// and without the listing: the same blobs land, a missing one is reported
// the same way, progress counts every ref, and directories are private.
func TestRestoreWorkersNoList(t *testing.T) {
	ctx := context.Background()
	r := fileReplica(t)
	src := newStore(t, 2)
	sh, err := NewShipper(ctx, ShipperOptions{Layout: src.l, Replica: r})
	if err != nil {
		t.Fatal(err)
	}
	var refs []bloblink.Ref
	for i := range 50 {
		e := src.put([]byte(fmt.Sprintf("message %d", i)), i%3 == 0)
		if _, err := sh.Offer(ctx, e); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, bloblink.Ref{Hash: e.Hash, Committed: true, Documents: 1, Owner: uint32(i), HasOwner: true})
	}
	lost := blobfs.Sum([]byte("lost"))
	refs = append(refs, bloblink.Ref{Hash: lost, Committed: true, Documents: 1, Owner: 9, HasOwner: true})
	for _, noList := range []bool{false, true} {
		dst, _ := blobfs.NewLayout(filepath.Join(t.TempDir(), "restored"), 2)
		var calls atomic.Int64
		var last atomic.Int64
		rep, err := Restore(ctx, RestoreOptions{Replica: r, Layout: dst, Refs: refs, Workers: 4, NoList: noList,
			Progress: func(done, total int64) {
				calls.Add(1)
				if total != int64(len(refs)) {
					t.Errorf("progress total %d", total)
				}
				for {
					old := last.Load()
					if done <= old || last.CompareAndSwap(old, done) {
						break
					}
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Written != 50 || len(rep.Missing) != 1 || rep.Missing[0].Hash != lost || rep.Missing[0].Why != "not in the replica" {
			t.Fatalf("noList %v: report %+v", noList, rep)
		}
		if calls.Load() != int64(len(refs)) || last.Load() != int64(len(refs)) {
			t.Fatalf("noList %v: %d progress calls, last %d", noList, calls.Load(), last.Load())
		}
		for _, ref := range refs[:50] {
			if res, err := blobfs.Verify(dst.Path(ref.Hash), ref.Hash); err != nil || res.Status != blobfs.Complete {
				t.Fatalf("blob %s: %+v %v", ref.Hash, res, err)
			}
		}
		st, err := os.Stat(filepath.Dir(dst.Path(refs[0].Hash)))
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("blob directory mode %v, %v", st.Mode(), err)
		}
	}
}
