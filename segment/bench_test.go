package segment

import (
	"bytes"
	"io"
	"testing"
)

func segmentBenchData(b *testing.B) ([]Batch, int64) {
	batches := randomBatches(11, 1, 2000, 512)
	var n int64
	for _, bt := range batches {
		n += int64(len(bt.Data))
	}
	return batches, n
}

// BenchmarkSegmentEncode measures writing a 1 MB segment of 512-byte
// batches (throughput of batch bytes).
func BenchmarkSegmentEncode(b *testing.B) {
	batches, n := segmentBenchData(b)
	var buf bytes.Buffer
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		w, err := NewSegmentWriter(&buf, segHeader(1, 1<<40))
		if err != nil {
			b.Fatal(err)
		}
		for _, bt := range batches {
			if err := w.Append(bt); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/float64(n), "ratio")
}

// BenchmarkSegmentDecode measures Open plus NextBatch to io.EOF.
func BenchmarkSegmentDecode(b *testing.B) {
	batches, n := segmentBenchData(b)
	obj, _ := writeSegment(b, segHeader(1, 1<<40), batches, nil)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		r, err := openBytes(obj, "bench")
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.NextBatch(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	}
}

func exportBenchData() ([]entry, int64) {
	entries := randomEntries(12, 3, 20000, 200)
	var n int64
	for _, e := range entries {
		n += int64(len(e.key) + len(e.value))
	}
	return entries, n
}

// BenchmarkExportWrite measures streaming ~4 MB of keys and values (20000
// entries) into an export.
func BenchmarkExportWrite(b *testing.B) {
	entries, n := exportBenchData()
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		w, err := NewExportWriter(io.Discard, expHeader(1, testFamilies()))
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if err := w.Add(e.fam, e.key, e.value); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExportRead measures NextEntry to io.EOF, digests included.
func BenchmarkExportRead(b *testing.B) {
	entries, n := exportBenchData()
	obj, _ := writeExport(b, expHeader(1, testFamilies()), entries, nil)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		r, err := openBytes(obj, "bench")
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, _, _, err := r.NextEntry(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	}
}

// BenchmarkExportVerify measures Verify (no per-record allocation).
func BenchmarkExportVerify(b *testing.B) {
	entries, n := exportBenchData()
	obj, _ := writeExport(b, expHeader(1, testFamilies()), entries, nil)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		r, err := openBytes(obj, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Verify(); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
