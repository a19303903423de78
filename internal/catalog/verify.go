package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// VerifyExport reads an export of generation gen in place and checks all
// of it: its framing, every checksum of its body, every family's key count
// and digest, and that its header names the generation and sequence number
// its key says. Retention uses it before it counts an export as a base to
// keep, since an export that does not verify is one restore cannot start
// from.
//
// The header and trailer are read with small ranged reads and the body is
// streamed with one GET, so no local space is needed however large the
// export. An error wrapping segment.ErrCorrupt, ErrVersion or ErrKind is
// about the object's bytes (or ErrWrongPlace about where it lies); any
// other error is the replica's (retrying may help).
func VerifyExport(ctx context.Context, r uploader.Replica, gen string, e layout.Export) (segment.Trailer, error) {
	ra := &streamReaderAt{ctx: ctx, r: r, key: e.Key}
	defer ra.close()
	rd, err := segment.Open(ra, e.Size, e.Key)
	if err != nil {
		return segment.Trailer{}, err
	}
	defer rd.Close()
	h := rd.Header()
	switch {
	case h.Kind != segment.KindExport:
		return segment.Trailer{}, fmt.Errorf("%s: is a %s, not an export: %w", e.Key, h.Kind, segment.ErrKind)
	case h.Generation != gen || h.FirstSeq != e.Seq:
		return segment.Trailer{}, fmt.Errorf("%s: its header says generation %s at sequence %d: %w", e.Key, h.Generation, h.FirstSeq, ErrWrongPlace)
	}
	if err := rd.Verify(); err != nil {
		return segment.Trailer{}, err
	}
	return rd.Trailer(), nil
}

// ErrWrongPlace means an object's header names another generation or
// sequence than its key: it was copied or renamed into the wrong place and
// cannot stand for what its key promises.
var ErrWrongPlace = errors.New("the object's header does not match its key")

// streamMin is the smallest read that opens a stream rather than making a
// ranged request: the reader's body reads are its read-ahead size (256 KiB),
// its framing reads are small.
const streamMin = 64 << 10

// maxSkip bounds how far a stream is read and thrown away to reach a read
// that starts past its position (the header, at most 16 MiB, lies before
// the body).
const maxSkip = 17 << 20

// streamReaderAt serves segment.Open's few small reads at an object's ends
// with ranged requests and the sequential body reads of a full pass from
// one streamed GET, so verifying a large object takes one request for its
// body instead of one per read-ahead buffer.
type streamReaderAt struct {
	ctx context.Context
	r   uploader.Replica
	key string
	rc  io.ReadCloser
	pos int64 // offset of the next byte rc yields
}

// ReadAt implements io.ReaderAt.
func (s *streamReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	if s.rc != nil && (off < s.pos || off-s.pos > maxSkip) {
		s.close()
	}
	if s.rc == nil {
		if len(p) < streamMin || off > maxSkip {
			b, err := s.r.ReadRange(s.ctx, s.key, off, int64(len(p)))
			if err != nil {
				return 0, err
			}
			return copy(p, b), nil
		}
		rc, err := s.r.Get(s.ctx, s.key)
		if err != nil {
			return 0, err // names the replica and the key
		}
		s.rc, s.pos = rc, 0
	}
	if gap := off - s.pos; gap > 0 {
		n, err := io.CopyN(io.Discard, s.rc, gap)
		s.pos += n
		if err != nil {
			s.close()
			return 0, fmt.Errorf("%s: read %s: skip to %d: %w", s.r, s.key, off, err)
		}
	}
	n, err := io.ReadFull(s.rc, p)
	s.pos += int64(n)
	if err != nil {
		s.close()
		return n, fmt.Errorf("%s: read %s bytes %d..%d: %w", s.r, s.key, off, off+int64(len(p)), err)
	}
	return n, nil
}

func (s *streamReaderAt) close() {
	if s.rc != nil {
		s.rc.Close()
		s.rc = nil
	}
}
