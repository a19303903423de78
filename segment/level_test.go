package segment

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

// levelCases are the ways a writer can be asked for a level: none, the
// zero Level, and every named one, each with and without an encoder pool.
func levelCases() []struct {
	name string
	opts func(p *Encoders) []WriterOption
} {
	type c = struct {
		name string
		opts func(p *Encoders) []WriterOption
	}
	cases := []c{
		{"no option", func(*Encoders) []WriterOption { return nil }},
		{"zero level", func(*Encoders) []WriterOption { return []WriterOption{WithLevel(0)} }},
	}
	for _, l := range Levels() {
		cases = append(cases,
			c{l.String(), func(*Encoders) []WriterOption { return []WriterOption{WithLevel(l)} }},
			c{l.String() + " pooled", func(p *Encoders) []WriterOption { return []WriterOption{WithLevel(l), WithEncoders(p)} }})
	}
	return cases
}

// TestLevelsRoundTrip: at every level, with or without reused encoders,
// segments and exports read back exactly as written and pass Verify;
// readers need nothing to know the level. Each object is written twice
// through the same pool, so the second one uses a reused encoder.
func TestLevelsRoundTrip(t *testing.T) {
	batches := randomBatches(3, 1, 300, 700)
	big := randomBatches(4, 1, 1, 3<<20) // several zstd blocks and windows
	entries := randomEntries(5, 3, 2000, 300)
	for _, tc := range levelCases() {
		t.Run(tc.name, func(t *testing.T) {
			pool := &Encoders{}
			for round := range 2 {
				for _, in := range [][]Batch{batches, big} {
					h := segHeader(in[0].Seq, in[len(in)-1].Seq+10)
					seg, tr := writeSegment(t, h, in, nil, tc.opts(pool)...)
					got, _, err := readAll(seg)
					if err != nil {
						t.Fatalf("round %d: read back: %v", round, err)
					}
					if !reflect.DeepEqual(got, in) {
						t.Fatalf("round %d: read back %d batches, differing from the %d written", round, len(got), len(in))
					}
					if err := openAndVerify(seg, "seg"); err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
					if tr.Records != uint64(len(in)) {
						t.Errorf("round %d: trailer records %d, want %d", round, tr.Records, len(in))
					}
				}
				exp, _ := writeExport(t, expHeader(9, testFamilies()), entries, nil, tc.opts(pool)...)
				_, got, err := readAll(exp)
				if err != nil || !reflect.DeepEqual(got, entries) {
					t.Fatalf("round %d: export read back: %d entries, err %v", round, len(got), err)
				}
				if err := openAndVerify(exp, "exp"); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		})
	}
}

// TestDefaultLevelUnchanged: without options, with the zero level, with
// LevelDefault and with a pool at LevelDefault the writers produce exactly
// the bytes earlier tailers wrote — the golden files — and the same bytes
// as each other on larger input.
func TestDefaultLevelUnchanged(t *testing.T) {
	for name, gen := range map[string]func(testing.TB, ...WriterOption) []byte{
		"v1-segment.tseg": func(tb testing.TB, o ...WriterOption) []byte {
			b, _ := writeSegment(tb, segHeader(100, 200), []Batch{
				{Seq: 100, CaptureUnixMs: 1700000000000, Data: wbatch(100, 2, []byte("put k1 v1 put k2 v2"))},
				{Seq: 102, CaptureUnixMs: 1700000000500, Data: wbatch(102, 1, []byte("delete k1"))},
				{Seq: 150, CaptureUnixMs: 1700000000400, Data: wbatch(150, 0, nil)},
			}, []ChangeLabel{{Account: 1, Collection: 2, MinChange: 10, MaxChange: 12}}, o...)
			return b
		},
		"v1-export.texp": func(tb testing.TB, o ...WriterOption) []byte {
			b, _ := writeExport(tb, expHeader(500, testFamilies()), []entry{
				{0, []byte("a"), []byte("1")},
				{0, []byte("b"), nil},
				{2, nil, []byte("empty key")},
				{2, []byte("z"), []byte("last")},
			}, map[uint32]uint64{1: 99}, o...)
			return b
		},
	} {
		golden, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		pool := &Encoders{}
		for _, tc := range levelCases()[:6] { // no option, zero, fastest (x2), default (x2)
			want := golden
			if tc.name == "fastest" || tc.name == "fastest pooled" {
				continue
			}
			for round := range 2 {
				if got := gen(t, tc.opts(pool)...); !bytes.Equal(got, want) {
					t.Errorf("%s, %s, round %d: %d bytes differ from the golden file's %d", name, tc.name, round, len(got), len(want))
				}
			}
		}
	}
	batches := randomBatches(6, 1, 2000, 512)
	want, _ := writeSegment(t, segHeader(1, 1<<40), batches, nil)
	pool := &Encoders{}
	for _, opts := range [][]WriterOption{{WithLevel(0)}, {WithLevel(LevelDefault)}, {WithEncoders(pool)}, {WithEncoders(pool)}} {
		if got, _ := writeSegment(t, segHeader(1, 1<<40), batches, nil, opts...); !bytes.Equal(got, want) {
			t.Errorf("default level with %d options: output differs from the plain writer's", len(opts))
		}
	}
}

// TestLevelsDiffer: the option reaches the encoder (each level writes
// different bytes for compressible input, and the strongest is smaller
// than the fastest), and a pooled encoder writes the same bytes as a
// fresh one at each level, also after the pool served another level and
// kind (uploads are idempotent only if sealing is deterministic).
func TestLevelsDiffer(t *testing.T) {
	batches := randomBatches(7, 1, 2000, 512)
	h := segHeader(1, 1<<40)
	pool := &Encoders{}
	out := map[Level][]byte{}
	for _, l := range Levels() {
		fresh, _ := writeSegment(t, h, batches, nil, WithLevel(l))
		for range 2 {
			writeExport(t, expHeader(9, testFamilies()), randomEntries(1, 3, 100, 100), nil, WithLevel(l), WithEncoders(pool))
			if pooled, _ := writeSegment(t, h, batches, nil, WithLevel(l), WithEncoders(pool)); !bytes.Equal(pooled, fresh) {
				t.Errorf("%v: a pooled encoder wrote %d bytes, a fresh one %d different ones", l, len(pooled), len(fresh))
			}
		}
		for other, b := range out {
			if bytes.Equal(b, fresh) {
				t.Errorf("%v and %v wrote the same bytes: the level is not applied", l, other)
			}
		}
		out[l] = fresh
	}
	if f, b := len(out[LevelFastest]), len(out[LevelBest]); b >= f {
		t.Errorf("LevelBest wrote %d bytes, LevelFastest %d: want the strongest level smaller", b, f)
	}
}

// TestLevelsPadHighRatio: the ratio bound the reader enforces holds at
// every level — data compressing more than 128-fold is padded whichever
// level compressed it.
func TestLevelsPadHighRatio(t *testing.T) {
	zeros := make([]byte, 4<<20)
	for _, l := range Levels() {
		seg, tr := writeSegment(t, segHeader(1, 10), []Batch{{Seq: 1, Data: wbatch(1, 1, zeros)}}, nil, WithLevel(l))
		body := uint64(len(seg)) // the body is less than this, the check below is on the object
		if tr.UncompressedLen > MaxCompressionRatio*body+RatioAllowance {
			t.Errorf("%v: %d uncompressed bytes in a %d-byte object", l, tr.UncompressedLen, body)
		}
		if err := openAndVerify(seg, l.String()); err != nil {
			t.Errorf("%v: %v", l, err)
		}
	}
}

// TestUnknownLevel: a level outside Levels is refused by both writers
// with ErrUnknownLevel, and level names round-trip through ParseLevel.
func TestUnknownLevel(t *testing.T) {
	for _, l := range []Level{-1, LevelBest + 1, 99} {
		if _, err := NewSegmentWriter(&bytes.Buffer{}, segHeader(1, 2), WithLevel(l)); !errors.Is(err, ErrUnknownLevel) {
			t.Errorf("segment writer at %v: err = %v, want ErrUnknownLevel", l, err)
		}
		if _, err := NewExportWriter(&bytes.Buffer{}, expHeader(1, testFamilies()), WithLevel(l)); !errors.Is(err, ErrUnknownLevel) {
			t.Errorf("export writer at %v: err = %v, want ErrUnknownLevel", l, err)
		}
	}
	for _, l := range Levels() {
		if got, err := ParseLevel(l.String()); err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), got, err)
		}
	}
	for _, s := range []string{"", "fast", "Default", "3"} {
		if _, err := ParseLevel(s); !errors.Is(err, ErrUnknownLevel) {
			t.Errorf("ParseLevel(%q): err = %v, want ErrUnknownLevel", s, err)
		}
	}
}

// TestEncodersConcurrent: writers on several goroutines share one
// Encoders and each still writes exactly what a fresh encoder writes (run
// with -race to check the pool's locking).
func TestEncodersConcurrent(t *testing.T) {
	pool := &Encoders{}
	inputs := make([][]Batch, 8)
	want := make([][]byte, len(inputs))
	for i := range inputs {
		inputs[i] = randomBatches(uint64(20+i), 1, 50, 400)
		want[i], _ = writeSegment(t, segHeader(1, 1<<40), inputs[i], nil, WithLevel(LevelFastest))
	}
	var wg sync.WaitGroup
	got := make([][][]byte, len(inputs))
	for i := range inputs {
		wg.Go(func() {
			for range 5 {
				var buf bytes.Buffer
				w, err := NewSegmentWriter(&buf, segHeader(1, 1<<40), WithLevel(LevelFastest), WithEncoders(pool))
				if err != nil {
					t.Error(err)
					return
				}
				for _, b := range inputs[i] {
					if err := w.Append(b); err != nil {
						t.Error(err)
						return
					}
				}
				if _, err := w.Close(); err != nil {
					t.Error(err)
					return
				}
				got[i] = append(got[i], buf.Bytes())
			}
		})
	}
	wg.Wait()
	for i := range inputs {
		for round, g := range got[i] {
			if !bytes.Equal(g, want[i]) {
				t.Errorf("input %d, round %d: %d bytes differ from a fresh encoder's %d", i, round, len(g), len(want[i]))
			}
		}
	}
}

// failAfter accepts n bytes, then fails every write.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

// TestEncodersAfterFailure: a writer whose destination failed does not
// hand its encoder back mid-frame; the next writer from the same pool
// writes what a fresh encoder writes.
func TestEncodersAfterFailure(t *testing.T) {
	batches := randomBatches(30, 1, 400, 600)
	want, _ := writeSegment(t, segHeader(1, 1<<40), batches, nil, WithLevel(LevelFastest))
	pool := &Encoders{}
	for _, limit := range []int{len(want) / 2, len(want) - 30} {
		w, err := NewSegmentWriter(&failAfter{n: limit}, segHeader(1, 1<<40), WithLevel(LevelFastest), WithEncoders(pool))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batches {
			if w.Append(b) != nil {
				break
			}
		}
		if _, err := w.Close(); err == nil {
			t.Fatalf("limit %d: Close succeeded on a failing destination", limit)
		}
		if got, _ := writeSegment(t, segHeader(1, 1<<40), batches, nil, WithLevel(LevelFastest), WithEncoders(pool)); !bytes.Equal(got, want) {
			t.Errorf("after a failure at byte %d: the pooled writer wrote %d bytes differing from a fresh one's %d", limit, len(got), len(want))
		}
	}
}
