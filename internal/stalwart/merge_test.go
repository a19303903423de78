package stalwart

import (
	"bytes"
	"testing"
)

func TestCounterMerge(t *testing.T) {
	m := CounterMerge{}
	tests := []struct {
		name     string
		existing []byte
		operands [][]byte
		want     []byte
		ok       bool
	}{
		{"absent existing counts as zero", nil, [][]byte{EncodeCounter(3), EncodeCounter(4)}, EncodeCounter(7), true},
		{"adds to existing", EncodeCounter(10), [][]byte{EncodeCounter(-3)}, EncodeCounter(7), true},
		{"negative result", EncodeCounter(1), [][]byte{EncodeCounter(-5)}, EncodeCounter(-4), true},
		{"no operands keeps value", EncodeCounter(9), nil, EncodeCounter(9), true},
		{"short operand fails", nil, [][]byte{{1, 2, 3}}, nil, false},
		{"long existing fails", make([]byte, 9), [][]byte{EncodeCounter(1)}, nil, false},
		{"empty existing fails", []byte{}, [][]byte{EncodeCounter(1)}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := m.FullMerge([]byte("k"), tc.existing, tc.operands)
			if ok != tc.ok || !bytes.Equal(got, tc.want) {
				t.Fatalf("FullMerge = %x, %v; want %x, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if got, ok := m.PartialMerge(nil, EncodeCounter(2), EncodeCounter(5)); !ok || !bytes.Equal(got, EncodeCounter(7)) {
		t.Fatalf("PartialMerge = %x, %v", got, ok)
	}
	if got, ok := m.PartialMergeMulti(nil, [][]byte{EncodeCounter(1), EncodeCounter(1), EncodeCounter(1)}); !ok || !bytes.Equal(got, EncodeCounter(3)) {
		t.Fatalf("PartialMergeMulti = %x, %v", got, ok)
	}
}

func TestHasMergeOperator(t *testing.T) {
	for _, f := range Families016 {
		want := f == "n" || f == "u" || f == "y"
		if HasMergeOperator(f) != want {
			t.Errorf("HasMergeOperator(%q) = %v, want %v", f, !want, want)
		}
	}
}
