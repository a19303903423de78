package segment_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/wbatch"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/walpin"
)

// BenchmarkSegmentLevels records the bytes trade of the compression
// levels (docs/benchmarks.md, "Segment compression levels"): for each
// data set and level it seals one segment of every batch and reports the
// batch bytes per second (MB/s), the compression ratio (in/out,
// uncompressed batch bytes per stored byte, framing included) and the
// allocation per segment. The data sets:
//
//   - loadgen: 2,000 transactions of the Stalwart-shaped load generator as
//     RocksDB wrote them in its WAL (messages with base64 attachments,
//     indexes, counters, changelog);
//   - mailtext: 1,500 plain-text mails (headers, a DKIM signature, prose
//     bodies and quoted replies) put in the blob family with a few index
//     keys, the compressible end of real mail;
//   - small: 20 load generator transactions per segment, what a hot
//     segment holds at a few hundred tx/s, fresh and with a reused encoder
//     (WithEncoders), to show the per-segment allocation.
func BenchmarkSegmentLevels(b *testing.B) {
	lg := loadgenBatches(b, 2000)
	sets := []struct {
		name    string
		batches []segment.Batch
	}{
		{"loadgen", lg},
		{"mailtext", mailBatches(1, 1500)},
	}
	for _, set := range sets {
		for _, l := range segment.Levels() {
			b.Run(set.name+"/"+l.String(), func(b *testing.B) {
				benchSeal(b, [][]segment.Batch{set.batches}, segment.WithLevel(l))
			})
		}
	}
	var small [][]segment.Batch
	for i := 0; i+20 <= len(lg); i += 20 {
		small = append(small, lg[i:i+20])
	}
	for _, l := range segment.Levels() {
		b.Run("small/"+l.String()+"/fresh", func(b *testing.B) {
			benchSeal(b, small, segment.WithLevel(l))
		})
		b.Run("small/"+l.String()+"/pooled", func(b *testing.B) {
			benchSeal(b, small, segment.WithLevel(l), segment.WithEncoders(&segment.Encoders{}))
		})
	}
}

// benchSeal writes each group of batches as one segment per iteration
// group and reports MB/s of batch bytes, in/out and allocation per
// segment.
func benchSeal(b *testing.B, groups [][]segment.Batch, opts ...segment.WriterOption) {
	var in, out int64
	for _, g := range groups {
		for _, bt := range g {
			in += int64(len(bt.Data))
		}
	}
	var buf bytes.Buffer
	b.SetBytes(in)
	b.ReportAllocs()
	for b.Loop() {
		out = 0
		for _, g := range groups {
			buf.Reset()
			h := segment.Header{Generation: "20261203T160000Z-abcdef", DBIdentity: "bench",
				FirstSeq: g[0].Seq, LastSeq: g[len(g)-1].Seq + uint64(g[len(g)-1].Count()),
				Families: []segment.Family{{ID: 0, Name: "default"}}}
			w, err := segment.NewSegmentWriter(&buf, h, opts...)
			if err != nil {
				b.Fatal(err)
			}
			for _, bt := range g {
				if err := w.Append(bt); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := w.Close(); err != nil {
				b.Fatal(err)
			}
			out += int64(buf.Len())
		}
	}
	b.ReportMetric(float64(in)/float64(out), "in/out")
	b.ReportMetric(float64(len(groups)), "segments/op")
}

// loadgenBatches returns the batches of n load generator transactions as
// RocksDB wrote them in the WAL.
func loadgenBatches(b *testing.B, n int) []segment.Batch {
	b.Helper()
	wals, err := loadgen.WriteWAL(context.Background(), filepath.Join(b.TempDir(), "primary"), n)
	if err != nil {
		b.Fatal(err)
	}
	var out []segment.Batch
	for _, w := range wals {
		if err := walpin.ReadFile(w.Path, w.Number, func(bt []byte) error {
			h, err := wbatch.ReadHeader(bt)
			if err != nil {
				return err
			}
			out = append(out, segment.Batch{Seq: h.Seq, CaptureUnixMs: 1764777600000 + int64(len(out)), Data: bytes.Clone(bt)})
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if len(out) < n {
		b.Fatalf("found %d batches in the WAL, wrote %d", len(out), n)
	}
	return out
}

// mailBatches returns n WriteBatches, each storing one plain-text mail
// in the blob family with a few index and property keys: deterministic
// for a seed. Word frequencies follow a Zipf law over a vocabulary of
// made-up words, four in ten mails quote an earlier one, and each carries
// a random DKIM signature, so the data is as compressible as prose mail
// and no more.
func mailBatches(seed uint64, n int) []segment.Batch {
	rng := rand.New(rand.NewPCG(seed, 99))
	syll := []string{"ka", "lo", "mi", "ne", "ri", "sa", "tu", "ve", "on", "el", "an", "is", "or", "th", "st", "re", "de", "ing", "tion", "er"}
	vocab := make([]string, 3000)
	for i := range vocab {
		var w strings.Builder
		for range 1 + rng.IntN(3) {
			w.WriteString(syll[rng.IntN(len(syll))])
		}
		vocab[i] = w.String()
	}
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(vocab)-1))
	paragraph := func() string {
		var p strings.Builder
		line := 0
		for range 2 + rng.IntN(5) {
			words := 5 + rng.IntN(15)
			for j := range words {
				w := vocab[zipf.Uint64()]
				if j == 0 {
					w = strings.ToUpper(w[:1]) + w[1:]
				}
				if j == words-1 {
					w += "."
				}
				if line+len(w) > 72 {
					p.WriteString("\r\n")
					line = 0
				} else if line > 0 {
					p.WriteByte(' ')
					line++
				}
				p.WriteString(w)
				line += len(w)
			}
		}
		return p.String() + "\r\n\r\n"
	}
	var bodies []string
	out := make([]segment.Batch, n)
	seq := uint64(1000)
	for i := range out {
		var body strings.Builder
		for range 1 + rng.IntN(4) {
			body.WriteString(paragraph())
		}
		if len(bodies) > 0 && rng.IntN(10) < 4 {
			prev := bodies[rng.IntN(len(bodies))]
			body.WriteString("On Tue, 1 Dec 2026, someone wrote:\r\n")
			for l := range strings.SplitSeq(strings.TrimRight(prev, "\r\n"), "\r\n") {
				body.WriteString("> " + l + "\r\n")
			}
		}
		bodies = append(bodies, body.String())
		sig := make([]byte, 256)
		for j := range sig {
			sig[j] = byte(rng.Uint32())
		}
		from, to := rng.IntN(400), rng.IntN(20)
		msg := fmt.Sprintf("Received: from mx%d.example.org (mx%d.example.org [192.0.2.%d])\r\n"+
			"\tby mail.example.com (Stalwart) with ESMTPS id %016x\r\n\tfor <user%d@example.com>; Thu, 3 Dec 2026 %02d:%02d:%02d +0000\r\n"+
			"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=mail;\r\n\tb=%s\r\n"+
			"From: Sender %d <sender%d@example.org>\r\nTo: User %d <user%d@example.com>\r\n"+
			"Subject: %s %s %s\r\nDate: Thu, 3 Dec 2026 %02d:%02d:%02d +0000\r\nMessage-ID: <%016x@example.org>\r\n"+
			"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s",
			from%9, from%9, from%250, rng.Uint64(), to, i/3600%24, i/60%60, i%60,
			base64.StdEncoding.EncodeToString(sig), from, from, to, to,
			vocab[zipf.Uint64()], vocab[zipf.Uint64()], vocab[zipf.Uint64()], i/3600%24, i/60%60, i%60, rng.Uint64(), body.String())
		hash := make([]byte, 32)
		for j := range hash {
			hash[j] = byte(rng.Uint32())
		}
		acct, doc := uint32(to), uint32(i)
		key := func(tag string) []byte { return fmt.Appendf(nil, "%s\x00%08x%08x", tag, acct, doc) }
		bb := wbatch.NewBuilder(seq).
			Add(wbatch.Record{Op: wbatch.OpPut, CF: 8, Key: hash, Value: []byte(msg)}).
			Add(wbatch.Record{Op: wbatch.OpPut, CF: 5, Key: append(key("link"), hash...)}).
			Add(wbatch.Record{Op: wbatch.OpPut, CF: 6, Key: key("meta"), Value: fmt.Appendf(nil, `{"size":%d,"from":%d}`, len(msg), from)}).
			Add(wbatch.Record{Op: wbatch.OpMerge, CF: 7, Key: key("quota"), Value: fmt.Appendf(nil, "%d", len(msg))})
		data := bb.Bytes()
		out[i] = segment.Batch{Seq: seq, CaptureUnixMs: 1764777600000 + int64(i), Data: data}
		seq += 4
	}
	return out
}
