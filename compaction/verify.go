package compaction

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tailer-backup/tailer/segment"
)

// narrowReader is one narrow segment being compared with the wide one.
type narrowReader struct {
	local
	rd *segment.Reader
	f  *os.File
}

func (n *narrowReader) close() {
	if n.rd != nil {
		n.rd.Close()
		n.f.Close()
		n.rd = nil
	}
}

// verify proves that the wide segment (downloaded from the replica) can
// stand in for the narrow ones (downloaded too): it reads every object to
// the end, so every checksum is checked, and walks the wide segment's
// batches once, comparing each with the next batch of every narrow segment
// whose range holds it — sequence, capture time and bytes. A narrow
// segment must yield exactly the wide segment's batches within its range,
// no more and no fewer; nested narrow segments (a minute inside an hour,
// both inside a day) are compared at the same time. Labels must cover the
// narrow ones'.
//
// exact is for a merge just made: the narrow segments must then tile the
// wide range, every wide batch must come from one of them, the labels must
// be exactly their merge, the capture range and record count their union,
// and, when built is given, the trailer must be the one written locally
// (so the uploaded bytes are the built bytes).
func verify(wide local, gen string, narrow []local, exact bool, built *segment.Trailer) error {
	wr, wf, err := openLocal(wide, gen)
	if err != nil {
		return err
	}
	defer wf.Close()
	defer wr.Close()
	wh, wt := wr.Header(), wr.Trailer()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s does not stand for the narrow segments: %s", wide.Key, fmt.Sprintf(format, args...))
	}
	if exact {
		if len(narrow) == 0 || narrow[0].First != wide.First || narrow[len(narrow)-1].Last != wide.Last {
			return fail("the inputs do not span %d..%d", wide.First, wide.Last)
		}
		for i := 1; i < len(narrow); i++ {
			if narrow[i].First != narrow[i-1].Last+1 {
				return fail("the inputs %s and %s are not contiguous", narrow[i-1].Key, narrow[i].Key)
			}
		}
		if built != nil && (wt.Records != built.Records || wt.UncompressedLen != built.UncompressedLen ||
			wt.BodyChecksum != built.BodyChecksum || wt.HeaderChecksum != built.HeaderChecksum ||
			wt.CompressedChecksum != built.CompressedChecksum) {
			return fail("the uploaded object's checksums differ from the ones written")
		}
	}
	for _, n := range narrow {
		if n.First < wide.First || n.Last > wide.Last {
			return fail("%s (%d..%d) is not inside it", n.Key, n.First, n.Last)
		}
	}

	readers := make([]*narrowReader, len(narrow))
	for i, n := range narrow {
		readers[i] = &narrowReader{local: n}
	}
	defer func() {
		for _, n := range readers {
			n.close()
		}
	}()
	var trailers []segment.Trailer
	open := func(n *narrowReader) error {
		rd, f, err := openLocal(n.local, gen)
		if err != nil {
			return err
		}
		n.rd, n.f = rd, f
		h := rd.Header()
		if h.DBIdentity != wh.DBIdentity || fmt.Sprint(h.Families) != fmt.Sprint(wh.Families) {
			return fail("%s has another source identity or column-family table", n.Key)
		}
		trailers = append(trailers, rd.Trailer())
		return nil
	}
	// finish checks that a narrow segment has no batch left.
	finish := func(n *narrowReader) error {
		b, err := n.rd.NextBatch()
		switch {
		case errors.Is(err, io.EOF):
			n.close()
			return nil
		case err != nil:
			return err
		}
		return fail("%s holds the batch at %d, which it lacks", n.Key, b.Seq)
	}
	next := 0
	var active []*narrowReader
	for {
		b, err := wr.NextBatch()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err // names the object and the byte range
		}
		for next < len(readers) && readers[next].First <= b.Seq {
			if err := open(readers[next]); err != nil {
				return err
			}
			active = append(active, readers[next])
			next++
		}
		matched := false
		kept := active[:0]
		for _, n := range active {
			if n.Last < b.Seq {
				if err := finish(n); err != nil {
					return err
				}
				continue
			}
			kept = append(kept, n)
			nb, err := n.rd.NextBatch()
			if errors.Is(err, io.EOF) {
				return fail("it holds the batch at %d within %s's range, which %s lacks", b.Seq, n.Key, n.Key)
			}
			if err != nil {
				return err
			}
			if nb.Seq != b.Seq || nb.CaptureUnixMs != b.CaptureUnixMs || !bytes.Equal(nb.Data, b.Data) {
				return fail("its batch at %d (captured %d) differs from %s's batch at %d (captured %d)", b.Seq, b.CaptureUnixMs, n.Key, nb.Seq, nb.CaptureUnixMs)
			}
			matched = true
		}
		active = kept
		if exact && !matched {
			return fail("it holds a batch at %d that no input holds", b.Seq)
		}
	}
	for _, n := range active {
		if err := finish(n); err != nil {
			return err
		}
	}
	for ; next < len(readers); next++ {
		if err := open(readers[next]); err != nil {
			return err
		}
		if err := finish(readers[next]); err != nil {
			return err
		}
	}

	if exact {
		want := mergeLabels(trailers)
		if fmt.Sprint(wt.Labels) != fmt.Sprint(want) {
			return fail("labels %v, the inputs' merged %v", wt.Labels, want)
		}
		var records uint64
		var lo, hi int64
		for _, t := range trailers {
			if t.Records == 0 {
				continue
			}
			if records == 0 || t.MinCaptureUnixMs < lo {
				lo = t.MinCaptureUnixMs
			}
			if records == 0 || t.MaxCaptureUnixMs > hi {
				hi = t.MaxCaptureUnixMs
			}
			records += t.Records
		}
		if wt.Records != records || wt.MinCaptureUnixMs != lo || wt.MaxCaptureUnixMs != hi {
			return fail("%d batches captured %d..%d, the inputs %d captured %d..%d", wt.Records, wt.MinCaptureUnixMs, wt.MaxCaptureUnixMs, records, lo, hi)
		}
		return nil
	}
	type k struct {
		account    uint32
		collection uint8
	}
	have := map[k]segment.ChangeLabel{}
	for _, l := range wt.Labels {
		have[k{l.Account, l.Collection}] = l
	}
	for i, t := range trailers {
		for _, l := range t.Labels {
			w, ok := have[k{l.Account, l.Collection}]
			if !ok || w.MinChange > l.MinChange || w.MaxChange < l.MaxChange {
				return fail("its labels do not cover %s's label %+v", narrow[i].Key, l)
			}
		}
	}
	return nil
}
