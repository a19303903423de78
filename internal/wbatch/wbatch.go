// Package wbatch reads and re-encodes RocksDB's WriteBatch representation
// (the bytes GetUpdatesSince returns and WriteBatchFrom takes) in pure Go.
//
// tailer ships batches as raw bytes so every record type survives without
// decoding on the hot path. Two places still need to look inside: restore,
// which must rewrite column-family ids from the source store's numbering
// to the target's, and the changelog labeller, which reads `l` records.
// Doing it in Go avoids one cgo call per record.
//
// Layout (RocksDB db/write_batch.cc): 8-byte little-endian sequence number,
// 4-byte little-endian count, then records, each a tag byte followed by
// fields: varint32 column family id (CF variants only), then
// varint32-length-prefixed slices. Count covers the records that consume a
// sequence number (puts, deletes, single deletes, range deletes, merges,
// blob indexes, wide-column entities); log data, no-ops and transaction
// markers do not.
package wbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderLen is the size of the sequence + count header.
const HeaderLen = 12

// Record tags, as RocksDB's ValueType (db/dbformat.h). The values are an
// on-disk contract of RocksDB and never change.
const (
	TagDeletion                 = 0x0
	TagValue                    = 0x1
	TagMerge                    = 0x2
	TagLogData                  = 0x3
	TagCFDeletion               = 0x4
	TagCFValue                  = 0x5
	TagCFMerge                  = 0x6
	TagSingleDeletion           = 0x7
	TagCFSingleDeletion         = 0x8
	TagBeginPrepareXID          = 0x9
	TagEndPrepareXID            = 0xA
	TagCommitXID                = 0xB
	TagRollbackXID              = 0xC
	TagNoop                     = 0xD
	TagCFRangeDeletion          = 0xE
	TagRangeDeletion            = 0xF
	TagCFBlobIndex              = 0x10
	TagBlobIndex                = 0x11
	TagBeginPersistedPrepareXID = 0x12
	TagBeginUnprepareXID        = 0x13
	TagCommitXIDAndTimestamp    = 0x15
	TagWideColumnEntity         = 0x16
	TagCFWideColumnEntity       = 0x17
)

// Op is what a record does, independent of whether its tag names a
// column family.
type Op uint8

// Ops.
const (
	OpPut Op = iota + 1
	OpDelete
	OpSingleDelete
	OpDeleteRange
	OpMerge
	OpBlobIndex
	OpPutEntity
	OpLogData
	OpMarker // no-op and transaction markers: no key, no sequence number
)

var opNames = map[Op]string{
	OpPut: "put", OpDelete: "delete", OpSingleDelete: "single delete",
	OpDeleteRange: "range delete", OpMerge: "merge", OpBlobIndex: "blob index",
	OpPutEntity: "put entity", OpLogData: "log data", OpMarker: "marker",
}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Counted reports whether a record with this op consumes a sequence number.
func (o Op) Counted() bool { return o >= OpPut && o <= OpPutEntity }

// Record is one decoded record. Key and Value alias the batch bytes. For a
// range delete Key is the start and Value the (exclusive) end key; for log
// data and markers Value holds the payload, if any.
type Record struct {
	Tag   byte
	Op    Op
	CF    uint32
	Key   []byte
	Value []byte
}

// Header is the fixed start of a batch.
type Header struct {
	Seq   uint64 // sequence number of the first counted record
	Count uint32 // counted records
}

// LastSeq is the sequence number of the batch's last counted record: after
// applying the batch, a store's latest sequence number is LastSeq. A batch
// with no counted record consumes none and returns Seq-1.
func (h Header) LastSeq() uint64 { return h.Seq + uint64(h.Count) - 1 }

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("corrupt write batch")

// ReadHeader decodes the batch header.
func ReadHeader(data []byte) (Header, error) {
	if len(data) < HeaderLen {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(data), HeaderLen)
	}
	return Header{
		Seq:   binary.LittleEndian.Uint64(data[0:8]),
		Count: binary.LittleEndian.Uint32(data[8:12]),
	}, nil
}

// Each calls fn for every record in order, then checks that the number of
// counted records equals the header's count. It stops at fn's first error.
func Each(data []byte, fn func(Record) error) error {
	h, err := ReadHeader(data)
	if err != nil {
		return err
	}
	d := decoder{buf: data[HeaderLen:], off: HeaderLen}
	var counted uint32
	for len(d.buf) > 0 {
		r, err := d.next()
		if err != nil {
			return err
		}
		if r.Op.Counted() {
			counted++
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if counted != h.Count {
		return fmt.Errorf("%w: header counts %d records, body has %d", ErrCorrupt, h.Count, counted)
	}
	return nil
}

// Records decodes every record of a batch.
func Records(data []byte) ([]Record, error) {
	var out []Record
	err := Each(data, func(r Record) error { out = append(out, r); return nil })
	return out, err
}

// Remap returns a copy of the batch with every column-family id replaced
// by mapID(id). Records of family 0 use RocksDB's CF-less tags, others the
// CF tags, exactly as RocksDB writes them, so the result is a valid batch
// for WriteBatchFrom. The header is kept.
func Remap(data []byte, mapID func(uint32) (uint32, error)) ([]byte, error) {
	out := make([]byte, HeaderLen, len(data)+16)
	copy(out, data[:min(len(data), HeaderLen)])
	err := Each(data, func(r Record) error {
		if hasCF(r.Op) {
			id, err := mapID(r.CF)
			if err != nil {
				return err
			}
			r.CF = id
		}
		out = AppendRecord(out, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func hasCF(o Op) bool { return o.Counted() }
