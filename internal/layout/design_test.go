package layout

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tailer-backup/tailer/internal/docexample"
)

// TestDesignDocKeys checks the example keys of docs/design.md against
// the code: every key under generations/ and blobs/ parses strictly,
// every key shape is shown, and the keys belong to the documented
// generation.json.
func TestDesignDocKeys(t *testing.T) {
	doc := docexample.Load(t, "design.md")
	var objs []Object
	blobs := 0
	for _, k := range doc.Lines(t, "keys") {
		switch {
		case strings.HasPrefix(k, Root):
			objs = append(objs, Object{Key: k})
		case strings.HasPrefix(k, BlobsRoot):
			if _, ok := ParseBlobKey(k); !ok {
				t.Errorf("documented blob key %s does not parse", k)
			}
			blobs++
		case strings.Contains(k, "/"):
			t.Errorf("documented key %s is under no prefix tailer writes", k)
		}
	}
	gens, unknown := Parse(objs)
	if len(unknown) > 0 {
		t.Fatalf("documented keys that are not canonical: %q", unknown)
	}
	if len(gens) != 1 {
		t.Fatalf("the documented keys name %d generations, want 1", len(gens))
	}
	g := gens[0]
	if g.MetaKey == "" || len(g.Exports) == 0 || len(g.BlobManifests) == 0 || len(g.Segments) == 0 || blobs == 0 {
		t.Fatalf("the documented keys must show every key shape: %+v, %d blob keys", g, blobs)
	}
	meta := decodeDocMeta(t, doc)
	if g.ID != meta.ID || g.Exports[0].Seq != meta.BaseSeq || g.BlobManifests[0].Seq != meta.BaseSeq {
		t.Fatalf("the documented keys (generation %s, export at %d) do not belong to the documented generation.json (%s, base_seq %d)",
			g.ID, g.Exports[0].Seq, meta.ID, meta.BaseSeq)
	}
	if g.Segments[0].First != meta.BaseSeq+1 {
		t.Fatalf("the documented segment starts at %d, not right after the base export at %d", g.Segments[0].First, meta.BaseSeq)
	}
}

// TestDesignDocGenerationJSON checks the documented generation.json: it
// is exactly what EncodeMeta writes, names every field of Meta, and is
// read back by DecodeMeta.
func TestDesignDocGenerationJSON(t *testing.T) {
	doc := docexample.Load(t, "design.md")
	var m Meta
	doc.CheckJSON(t, MetaName, &m)
	raw, err := EncodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	if ex := strings.TrimSpace(doc.Example(t, MetaName)); string(raw) != ex {
		t.Fatalf("EncodeMeta writes\n%s\nnot the documented\n%s", raw, ex)
	}
	if m.BaseBatch == nil || m.Source == "" {
		t.Fatal("the documented generation.json must show the optional base_batch and source")
	}
}

// genID matches what looks like a generation id in prose.
var genID = regexp.MustCompile(`\b[0-9]{8}T[0-9]{6}(\.[0-9]+)?Z-[0-9A-Za-z]+\b`)

// TestDesignDocGenerationIDs checks every generation id the documents
// mention: each is canonical, and all are the one of the documented
// generation.json, so the examples describe one replica.
func TestDesignDocGenerationIDs(t *testing.T) {
	design := docexample.Load(t, "design.md")
	want := decodeDocMeta(t, design).ID
	for _, name := range []string{"design.md", "architecture.md"} {
		doc := docexample.Load(t, name)
		for _, id := range genID.FindAllString(doc.Text, -1) {
			if err := ValidGenerationID(id); err != nil {
				t.Errorf("%s: %v", name, err)
			} else if id != want {
				t.Errorf("%s mentions generation %s; the examples use %s", name, id, want)
			}
		}
	}
}

func decodeDocMeta(t *testing.T, doc docexample.Doc) Meta {
	t.Helper()
	m, err := DecodeMeta("docs/design.md", []byte(doc.Example(t, MetaName)))
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidGenerationID(m.ID); err != nil {
		t.Fatal(err)
	}
	return m
}
