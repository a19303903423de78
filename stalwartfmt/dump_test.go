package stalwartfmt_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/tailer-backup/tailer/dumpsource"
	"github.com/tailer-backup/tailer/integration/loadgen"
	"github.com/tailer-backup/tailer/internal/stalwart"
	"github.com/tailer-backup/tailer/internal/store"
	"github.com/tailer-backup/tailer/snapshot"
	"github.com/tailer-backup/tailer/stalwartfmt"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current writer")

// buildSmallStore writes a small, fully deterministic Stalwart-like store:
// the schema version, a few keys in every exported subspace (counters as
// merges, a value long enough for a two-byte LEB128 length), a range
// delete, and injectEdges' cases.
func buildSmallStore(t *testing.T, dir string, schema []byte) {
	t.Helper()
	st, err := store.OpenWritable(dir, stalwart.Families016, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	h := func(f string) *grocksdb.ColumnFamilyHandle { return st.Handle(f) }
	if schema != nil {
		wb.PutCF(h("p"), []byte{0}, schema)
	}
	acct := func(a uint32, rest ...byte) []byte { return append(binary.BigEndian.AppendUint32(nil, a), rest...) }
	wb.PutCF(h("p"), acct(1, 0, 0, 0, 0, 1, 0x10), text(200, "metadata"))
	wb.PutCF(h("p"), acct(1, 0, 0, 0, 0, 1, 0x11), []byte{0x02})
	wb.MergeCF(h("n"), acct(1), stalwart.EncodeCounter(5))
	wb.MergeCF(h("n"), acct(1), stalwart.EncodeCounter(2))
	wb.MergeCF(h("n"), acct(1, 0xFF), stalwart.EncodeCounter(123456))
	wb.PutCF(h("n"), acct(2), stalwart.EncodeCounter(9))
	wb.MergeCF(h("u"), []byte("queue-quota"), stalwart.EncodeCounter(-3))
	wb.PutCF(h("i"), acct(1, 0, 3, 'f', 'o', 'o', 0, 0, 0, 1), nil)
	wb.PutCF(h("b"), acct(1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1), nil)
	wb.PutCF(h("s"), []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, []byte(`{"registry":"object"}`))
	wb.PutCF(h("g"), []byte("pk"), []byte{0, 0, 0, 1})
	wb.PutCF(h("d"), []byte("user@example.org"), []byte{0, 0, 0, 1})
	for c := uint64(1); c <= 4; c++ {
		wb.PutCF(h("l"), binary.BigEndian.AppendUint64(acct(1, 0), c), []byte{0, 0, 0, 0, 1, 0, 0, byte(c)})
	}
	wb.DeleteRangeCF(h("l"), binary.BigEndian.AppendUint64(acct(1, 0), 1), binary.BigEndian.AppendUint64(acct(1, 0), 3))
	wb.PutCF(h("e"), []byte("queued-message"), []byte("envelope"))
	wb.PutCF(h("q"), []byte("queue-event"), []byte("due"))
	wb.PutCF(h("f"), []byte("task"), []byte("index"))
	wb.PutCF(h("o"), []byte("span"), []byte("trace"))
	wb.PutCF(h("x"), []byte("metric"), []byte{1, 2, 3})
	wb.PutCF(h("y"), []byte("rate"), stalwart.EncodeCounter(1))
	wb.PutCF(h("t"), hash32(0x10), append(text(100, "blob"), 0x00))
	wb.PutCF(h("k"), append(hash32(0x10), 0, 0, 0, 0, 1), nil)
	if err := st.DB.Write(wo, wb); err != nil {
		t.Fatal(err)
	}
	injectEdges(t, st)
	// h and r stay empty: their files hold only the header.
}

func dumpDir(t *testing.T, dir, out string) stalwartfmt.Summary {
	t.Helper()
	st, err := store.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sum, err := stalwartfmt.WriteDump(context.Background(), st, st.DB.GetLatestSequenceNumber(), out, stalwartfmt.Options{Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestGolden exports a small hand-built store and compares every file byte
// for byte with testdata/golden (and the decoded records with
// testdata/golden.txt). Regenerate with: go test ./stalwartfmt -run TestGolden -update
func TestGolden(t *testing.T) {
	tmp := t.TempDir()
	db, out := filepath.Join(tmp, "db"), filepath.Join(tmp, "out")
	buildSmallStore(t, db, []byte{0, 0, 0, 6})
	sum := dumpDir(t, db, out)
	if sum.Schema != 6 || len(sum.Files) != 19 || sum.MissingBlobs != 1 || sum.UnmarkedBlobs != 1 {
		t.Fatalf("summary: schema %d, %d files, %d missing, %d unmarked; want 6, 19, 1, 1", sum.Schema, len(sum.Files), sum.MissingBlobs, sum.UnmarkedBlobs)
	}
	got, err := readDump(out)
	if err != nil {
		t.Fatal(err)
	}
	golden, goldenTxt := filepath.Join("testdata", "golden"), filepath.Join("testdata", "golden.txt")
	if *update {
		if err := os.RemoveAll(golden); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(golden, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range got {
			raw, err := os.ReadFile(filepath.Join(out, f.Name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(golden, f.Name), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(goldenTxt, []byte(listing(got)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("testdata/golden rewritten")
	}
	// The checked-in bytes decode to the checked-in listing (the reader
	// alone, no store), and the listing is what the format document says
	// the store holds.
	want, err := readDump(golden)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := os.ReadFile(goldenTxt)
	if err != nil {
		t.Fatal(err)
	}
	if listing(want) != string(txt) {
		t.Fatalf("testdata/golden does not decode to testdata/golden.txt")
	}
	if l := listing(got); l != string(txt) {
		t.Fatalf("decoded export differs from testdata/golden.txt:\n%s", l)
	}
	st, err := store.OpenReadOnly(db)
	if err != nil {
		t.Fatal(err)
	}
	compareDump(t, want, expectedDump(t, st), 6)
	st.Close()
	for _, f := range want {
		g, err := os.ReadFile(filepath.Join(out, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.ReadFile(filepath.Join(golden, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g, w) {
			t.Errorf("%s: %d bytes differ from the golden %d bytes although the records are equal: the LZ4 framing changed (library or options); if intended, rerun with -update", f.Name, len(g), len(w))
		}
	}
}

// TestDumpFromLive writes a dump of a Stalwart-like store that is open as a primary
// (the generator holds it, as Stalwart would) and checks every file against
// the store at the dump's sequence number.
func TestDumpFromLive(t *testing.T) {
	tmp := t.TempDir()
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(tmp, "primary"), Seed: 9, Accounts: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Run(context.Background(), 1200, 0); err != nil {
		t.Fatal(err)
	}
	injectEdges(t, g.Store())
	if _, err := g.Run(context.Background(), 200, 0); err != nil {
		t.Fatal(err)
	}
	var ticks int
	out := filepath.Join(tmp, "out")
	sum, err := dumpsource.FromLive(context.Background(), g.Dir(), filepath.Join(tmp, "scratch"), out,
		stalwartfmt.Options{Log: testLog(t), Progress: func(stalwartfmt.Progress) { ticks++ }, ProgressEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	if seq := g.Store().DB.GetLatestSequenceNumber(); sum.Seq != seq {
		t.Fatalf("export at seq %d, primary at %d with no writes since", sum.Seq, seq)
	}
	got, err := readDump(out)
	if err != nil {
		t.Fatal(err)
	}
	n := compareDump(t, got, expectedDump(t, g.Store()), 6)
	if uint64(n) != sum.Records {
		t.Errorf("summary says %d records, files hold %d", sum.Records, n)
	}
	if len(got['t'].Records) < 100 || len(got['i'].Records) < 100 || len(got['l'].Records) < 100 {
		t.Fatalf("too little content to mean anything: t %d, i %d, l %d", len(got['t'].Records), len(got['i'].Records), len(got['l'].Records))
	}
	if sum.MissingBlobs != 1 || ticks == 0 {
		t.Errorf("missing blobs %d (want the 1 injected), progress calls %d", sum.MissingBlobs, ticks)
	}
	if entries, _ := os.ReadDir(filepath.Join(tmp, "scratch", "snapshots")); len(entries) != 0 {
		t.Errorf("snapshot left behind in scratch: %v", entries)
	}
	t.Logf("%d files, %d records, %d bytes at seq %d", len(sum.Files), sum.Records, sum.Bytes, sum.Seq)
}

// TestDumpUnderWrites freezes the store while the generator keeps
// writing and checks the files against the frozen view: every subspace at
// the same sequence number, so every linked blob is there (a delivery
// writes the blob and its links in one batch; Stalwart's own export, one
// iterator per subspace on the live store, can miss some).
func TestDumpUnderWrites(t *testing.T) {
	tmp := t.TempDir()
	g, err := loadgen.Open(loadgen.Config{Dir: filepath.Join(tmp, "primary"), Seed: 3, Accounts: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Run(context.Background(), 400, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := g.Run(ctx, 0, 0); done <- err }()
	frozen, err := snapshot.OpenFrozen(context.Background(), g.Dir(), filepath.Join(tmp, "snap"), testLog(t))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer frozen.Close()
	out := filepath.Join(tmp, "out")
	sum, err := stalwartfmt.WriteDump(context.Background(), frozen.Store, frozen.Seq, out, stalwartfmt.Options{Log: testLog(t)})
	cancel()
	if werr := <-done; werr != nil {
		t.Fatal(werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if sum.MissingBlobs != 0 {
		t.Errorf("%d linked blobs missing from a consistent view", sum.MissingBlobs)
	}
	got, err := readDump(out)
	if err != nil {
		t.Fatal(err)
	}
	compareDump(t, got, expectedDump(t, frozen.Store), 6)
	if frozen.Seq >= g.Store().DB.GetLatestSequenceNumber() {
		t.Logf("note: no writes landed after the freeze (seq %d)", frozen.Seq)
	}
}

// TestSchemaVersion: an unknown version is refused by number, a missing or
// malformed one clearly, and nothing is left in the output's place.
func TestSchemaVersion(t *testing.T) {
	cases := []struct {
		name   string
		schema []byte
		want   string
	}{
		{"unknown", []byte{0, 0, 0, 7}, "unknown Stalwart schema version 7"},
		{"older", []byte{0, 0, 0, 5}, "unknown Stalwart schema version 5"},
		{"missing", nil, "no schema version (family p, key 0x00)"},
		{"malformed", []byte{6}, "is 1 bytes (06), want a 4-byte big-endian u32"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			db, out := filepath.Join(tmp, "db"), filepath.Join(tmp, "out")
			buildSmallStore(t, db, tc.schema)
			st, err := store.OpenReadOnly(db)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_, err = stalwartfmt.WriteDump(context.Background(), st, 1, out, stalwartfmt.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if tc.name == "unknown" && !errors.Is(err, stalwartfmt.ErrUnknownSchema) {
				t.Errorf("error %v does not wrap ErrUnknownSchema", err)
			}
			entries, _ := os.ReadDir(tmp)
			for _, e := range entries {
				if e.Name() != "db" {
					t.Errorf("left behind: %s", e.Name())
				}
			}
		})
	}
	if _, err := stalwartfmt.LayoutFor(6); err != nil {
		t.Fatal(err)
	}
}

// TestOutputDirectory: a non-empty --out is refused (Stalwart would import
// the stray file), an empty one is used.
func TestOutputDirectory(t *testing.T) {
	tmp := t.TempDir()
	db := filepath.Join(tmp, "db")
	buildSmallStore(t, db, []byte{0, 0, 0, 6})
	st, err := store.OpenReadOnly(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	full := filepath.Join(tmp, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := stalwartfmt.WriteDump(context.Background(), st, 1, full, stalwartfmt.Options{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("export into a non-empty directory: %v", err)
	}
	empty := filepath.Join(tmp, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := stalwartfmt.WriteDump(context.Background(), st, 1, empty, stalwartfmt.Options{}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 19 {
		t.Fatalf("%d files in the empty directory after export, want 19", len(entries))
	}
}

// TestFamilies: a family the layout does not know is reported and left
// out; an exported subspace whose family is absent gets an empty file, as
// Stalwart (which creates every family) would write.
func TestFamilies(t *testing.T) {
	tmp := t.TempDir()
	db := filepath.Join(tmp, "db")
	var fams []string
	for _, f := range stalwart.Families016 {
		if f != "x" {
			fams = append(fams, f)
		}
	}
	st, err := store.OpenWritable(db, append(fams, "extra"), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	if err := st.DB.PutCF(wo, st.Handle("p"), []byte{0}, []byte{0, 0, 0, 6}); err != nil {
		t.Fatal(err)
	}
	if err := st.DB.PutCF(wo, st.Handle("extra"), []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out := filepath.Join(tmp, "out")
	sum := dumpDir(t, db, out)
	if len(sum.Ignored) != 1 || sum.Ignored[0] != "extra" {
		t.Fatalf("ignored families %v, want [extra]", sum.Ignored)
	}
	got, err := readDump(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 19 || len(got['x'].Records) != 0 || got['x'].Schema != 6 || len(got['p'].Records) != 1 {
		t.Fatalf("%d files, x: %d records schema %d, p: %d records", len(got), len(got['x'].Records), got['x'].Schema, len(got['p'].Records))
	}
}
