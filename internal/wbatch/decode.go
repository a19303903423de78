package wbatch

import (
	"encoding/binary"
	"fmt"
)

type decoder struct {
	buf []byte
	off int // offset of buf[0] in the batch, for error messages
}

func (d *decoder) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", ErrCorrupt, what, d.off)
}

func (d *decoder) varint32() (uint32, error) {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || v > 0xFFFFFFFF {
		return 0, d.fail("bad varint32")
	}
	d.buf, d.off = d.buf[n:], d.off+n
	return uint32(v), nil
}

func (d *decoder) slice() ([]byte, error) {
	n, err := d.varint32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(d.buf)) {
		return nil, d.fail(fmt.Sprintf("slice of %d bytes past the end (%d left)", n, len(d.buf)))
	}
	s := d.buf[:n:n]
	d.buf, d.off = d.buf[n:], d.off+int(n)
	return s, nil
}

// shape says how a tag's fields are laid out.
type shape struct {
	op     Op
	cf     bool // a varint32 column family id comes first
	fields int  // number of length-prefixed slices: key[, value]
	value  bool // with one field: it is a payload (Value), not a Key
}

var shapes = map[byte]shape{
	TagDeletion:                 {op: OpDelete, fields: 1},
	TagCFDeletion:               {op: OpDelete, cf: true, fields: 1},
	TagSingleDeletion:           {op: OpSingleDelete, fields: 1},
	TagCFSingleDeletion:         {op: OpSingleDelete, cf: true, fields: 1},
	TagValue:                    {op: OpPut, fields: 2},
	TagCFValue:                  {op: OpPut, cf: true, fields: 2},
	TagMerge:                    {op: OpMerge, fields: 2},
	TagCFMerge:                  {op: OpMerge, cf: true, fields: 2},
	TagRangeDeletion:            {op: OpDeleteRange, fields: 2},
	TagCFRangeDeletion:          {op: OpDeleteRange, cf: true, fields: 2},
	TagBlobIndex:                {op: OpBlobIndex, fields: 2},
	TagCFBlobIndex:              {op: OpBlobIndex, cf: true, fields: 2},
	TagWideColumnEntity:         {op: OpPutEntity, fields: 2},
	TagCFWideColumnEntity:       {op: OpPutEntity, cf: true, fields: 2},
	TagLogData:                  {op: OpLogData, fields: 1, value: true},
	TagNoop:                     {op: OpMarker},
	TagBeginPrepareXID:          {op: OpMarker},
	TagBeginPersistedPrepareXID: {op: OpMarker},
	TagBeginUnprepareXID:        {op: OpMarker},
	TagEndPrepareXID:            {op: OpMarker, fields: 1, value: true},
	TagCommitXID:                {op: OpMarker, fields: 1, value: true},
	TagRollbackXID:              {op: OpMarker, fields: 1, value: true},
	TagCommitXIDAndTimestamp:    {op: OpMarker, fields: 2},
}

func (d *decoder) next() (Record, error) {
	tag := d.buf[0]
	sh, ok := shapes[tag]
	if !ok {
		return Record{}, d.fail(fmt.Sprintf("unknown record tag 0x%02x", tag))
	}
	d.buf, d.off = d.buf[1:], d.off+1
	r := Record{Tag: tag, Op: sh.op}
	if sh.cf {
		id, err := d.varint32()
		if err != nil {
			return Record{}, err
		}
		r.CF = id
	}
	for i := 0; i < sh.fields; i++ {
		s, err := d.slice()
		if err != nil {
			return Record{}, err
		}
		switch {
		case i == 0 && !sh.value:
			r.Key = s
		default:
			r.Value = s
		}
	}
	return r, nil
}
