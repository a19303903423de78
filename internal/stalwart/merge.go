package stalwart

import "encoding/binary"

// CounterMerge implements Stalwart's "merge" operator: the existing value
// and every operand are i64 little-endian; the result is their sum, stored
// as 8 bytes LE. An absent existing value counts as 0. Any value or operand
// that is not exactly 8 bytes fails the merge, as in Stalwart, so a corrupt
// counter surfaces as an error instead of a silently wrong number.
//
// It satisfies grocksdb.MergeOperator, PartialMerger and MultiMerger: full
// and partial merge are the same addition.
type CounterMerge struct{}

// Name returns the name Stalwart registers; RocksDB stores it in OPTIONS.
func (CounterMerge) Name() string { return MergeOperatorName }

// FullMerge adds every operand to the existing value.
func (CounterMerge) FullMerge(_ []byte, existing []byte, operands [][]byte) ([]byte, bool) {
	var sum int64
	if existing != nil {
		v, ok := decodeCounter(existing)
		if !ok {
			return nil, false
		}
		sum = v
	}
	for _, op := range operands {
		v, ok := decodeCounter(op)
		if !ok {
			return nil, false
		}
		sum += v
	}
	return EncodeCounter(sum), true
}

// PartialMerge adds two operands.
func (m CounterMerge) PartialMerge(_ []byte, left, right []byte) ([]byte, bool) {
	return m.FullMerge(nil, nil, [][]byte{left, right})
}

// PartialMergeMulti adds any number of operands.
func (m CounterMerge) PartialMergeMulti(_ []byte, operands [][]byte) ([]byte, bool) {
	return m.FullMerge(nil, nil, operands)
}

// EncodeCounter encodes a counter value or merge operand as Stalwart does.
func EncodeCounter(v int64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(v))
	return b
}

func decodeCounter(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(b)), true
}
