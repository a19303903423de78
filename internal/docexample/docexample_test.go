package docexample

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    map[string]string
		wantErr string
	}{
		{name: "none", text: "# title\n\ntext\n", want: map[string]string{}},
		{
			name: "two",
			text: "a\n<!-- example: keys -->\n```\nk1\nk2\n```\nb\n<!-- example: x.json -->\n```json\n{}\n```\n",
			want: map[string]string{"keys": "k1\nk2", "x.json": "{}"},
		},
		{name: "empty block", text: "<!-- example: e -->\n```\n```\n", want: map[string]string{"e": ""}},
		{name: "unmarked blocks are not examples", text: "```\nzzz\n```\n", want: map[string]string{}},
		{name: "twice", text: "<!-- example: a -->\n```\n1\n```\n<!-- example: a -->\n```\n2\n```\n", wantErr: "named twice"},
		{name: "no block", text: "<!-- example: a -->\ntext\n", wantErr: "not followed by a fenced block"},
		{name: "at the end", text: "<!-- example: a -->", wantErr: "not followed by a fenced block"},
		{name: "unclosed", text: "<!-- example: a -->\n```\n1\n", wantErr: "not closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

type inner struct {
	C int `json:"c"`
}

type sample struct {
	A string `json:"a"`
	B int    `json:"b,omitempty"`
	inner
	Skip   int `json:"-"`
	Plain  int
	hidden int
}

func TestJSONFields(t *testing.T) {
	got := JSONFields(reflect.TypeOf(sample{}))
	want := []string{"a", "b", "c", "Plain"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCheckJSONCatchesDrift(t *testing.T) {
	type rec struct {
		A string `json:"a"`
		B int    `json:"b,omitempty"`
	}
	tests := []struct {
		name, example string
		ok            bool
	}{
		{name: "exact", example: "{\n  \"a\": \"x\",\n  \"b\": 1\n}", ok: true},
		{name: "unknown member", example: "{\n  \"a\": \"x\",\n  \"b\": 1,\n  \"z\": 2\n}"},
		{name: "omitted optional member", example: "{\n  \"a\": \"x\"\n}"},
		{name: "other layout", example: "{\"a\": \"x\", \"b\": 1}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Doc{Path: "doc.md", Examples: map[string]string{"r": tc.example}}
			ft := &fakeT{TB: t}
			func() {
				defer func() { recover() }() // fakeT.Fatalf panics to stop like t.Fatal
				d.CheckJSON(ft, "r", &rec{})
			}()
			if ft.failed == tc.ok {
				t.Fatalf("failed = %v, want %v (%s)", ft.failed, !tc.ok, ft.msg)
			}
		})
	}
}

// fakeT records a failure instead of failing the test.
type fakeT struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.failed, f.msg = true, format
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, format
	panic("fatal")
}
func (f *fakeT) Fatal(args ...any) {
	f.failed = true
	panic("fatal")
}
