package blobship

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tailer-backup/tailer/blobfs"
)

// StreamThreshold is the largest blob file read whole into memory to be
// verified and encoded (one read, one compression). A larger one is
// streamed (File.WriteObject): read three times, but never held whole,
// except that an LZ4 blob's payload must be decompressed in memory to be
// hashed.
const StreamThreshold = 8 << 20

// ErrChanged is wrapped by WriteObject when a blob file's bytes differ
// between two reads of it. A complete Stalwart blob never changes, so the
// file is not what was verified: what was written must be discarded.
var ErrChanged = errors.New("blob file changed while it was read")

// File is one blob file, opened and verified, to be written as an object.
// It stays open, so the bytes written are those of the file verified
// even if Stalwart's purge removes its name meanwhile.
type File struct {
	// Result is the verification's outcome; ModTime the file's
	// modification time, for Result.Ready.
	Result  blobfs.Result
	ModTime time.Time

	f    *os.File
	data []byte // the whole file, when small enough to be read at once
}

// OpenFile opens and verifies the blob file at path against h. The error
// is for I/O only and wraps os.ErrNotExist when the file is gone.
func OpenFile(path string, h blobfs.Hash) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat blob %s: %w", path, err)
	}
	out := &File{f: f, ModTime: st.ModTime()}
	if st.Size() <= StreamThreshold {
		out.data, err = io.ReadAll(io.LimitReader(f, StreamThreshold+1))
		if err == nil && int64(len(out.data)) > StreamThreshold {
			out.data = nil // grew while read: stream it
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("read blob %s: %w", path, err)
		}
	}
	if out.data != nil {
		out.Result = blobfs.VerifyBytes(out.data, h)
		return out, nil
	}
	if out.Result, err = blobfs.VerifyFile(f, h); err != nil {
		f.Close()
		return nil, err
	}
	return out, nil
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// WriteObject writes the file's object (format.go) to w. A small file is
// encoded from the bytes verified; a large one is streamed in two passes
// (length, checksum and compressed size first, then header and body),
// and the second pass is checked against the first (ErrChanged).
func (f *File) WriteObject(e *Encoder, w io.Writer) error {
	if f.data != nil {
		_, err := w.Write(e.Encode(f.data))
		return err
	}
	return e.EncodeFile(w, f.f)
}

// countWriter counts what is written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// EncodeFile writes the object of the blob file r holds (read from its
// start) to w without holding the file in memory; see File.WriteObject.
// On error w may hold part of an object, to be discarded.
func (e *Encoder) EncodeFile(w io.Writer, r io.ReadSeeker) error {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	sum := xxhash.New()
	var z countWriter
	e.zw.Reset(&z)
	size, err := io.Copy(io.MultiWriter(sum, e.zw), io.LimitReader(r, MaxBlobSize+1))
	if err == nil {
		err = e.zw.Close()
	}
	if err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	if size > MaxBlobSize {
		return fmt.Errorf("blob file of more than %d bytes: larger than the object format holds", MaxBlobSize)
	}
	enc := byte(encStored)
	if compresses(size, z.n) {
		enc = encZstd
	}
	hdr := make([]byte, headerLen)
	copy(hdr, magic[:])
	hdr[4], hdr[5] = version, enc
	binary.LittleEndian.PutUint64(hdr[6:], uint64(size))
	binary.LittleEndian.PutUint64(hdr[14:], sum.Sum64())
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	again := xxhash.New()
	src := io.TeeReader(io.LimitReader(r, size+1), again)
	var n int64
	if enc == encStored {
		n, err = io.Copy(w, src)
	} else {
		e.zw.Reset(w)
		if n, err = io.Copy(e.zw, src); err == nil {
			err = e.zw.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("write blob object: %w", err)
	}
	if n != size || !bytes.Equal(again.Sum(nil), sum.Sum(nil)) {
		return fmt.Errorf("%w: %d bytes at the first read, %d at the second", ErrChanged, size, n)
	}
	return nil
}
