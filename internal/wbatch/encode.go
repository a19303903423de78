package wbatch

import "encoding/binary"

// cfTags maps an op to its (CF-less, CF) tags.
var cfTags = map[Op][2]byte{
	OpPut:          {TagValue, TagCFValue},
	OpDelete:       {TagDeletion, TagCFDeletion},
	OpSingleDelete: {TagSingleDeletion, TagCFSingleDeletion},
	OpDeleteRange:  {TagRangeDeletion, TagCFRangeDeletion},
	OpMerge:        {TagMerge, TagCFMerge},
	OpBlobIndex:    {TagBlobIndex, TagCFBlobIndex},
	OpPutEntity:    {TagWideColumnEntity, TagCFWideColumnEntity},
}

// AppendRecord appends r's encoding to dst. Keyed records are encoded from
// Op and CF (family 0 with the CF-less tag, as RocksDB does); log data and
// markers keep their tag.
func AppendRecord(dst []byte, r Record) []byte {
	tags, keyed := cfTags[r.Op]
	if !keyed {
		dst = append(dst, r.Tag)
		sh := shapes[r.Tag]
		switch {
		case sh.fields == 1:
			dst = appendSlice(dst, r.Value)
		case sh.fields == 2:
			dst = appendSlice(dst, r.Key)
			dst = appendSlice(dst, r.Value)
		}
		return dst
	}
	if r.CF == 0 {
		dst = append(dst, tags[0])
	} else {
		dst = append(dst, tags[1])
		dst = binary.AppendUvarint(dst, uint64(r.CF))
	}
	dst = appendSlice(dst, r.Key)
	if r.Op != OpDelete && r.Op != OpSingleDelete {
		dst = appendSlice(dst, r.Value)
	}
	return dst
}

func appendSlice(dst, s []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Builder assembles a batch in RocksDB's representation. Tests and the
// load generator's checks use it to produce batches byte for byte as
// RocksDB would.
type Builder struct {
	seq   uint64
	count uint32
	body  []byte
}

// NewBuilder starts a batch whose first record gets sequence number seq.
func NewBuilder(seq uint64) *Builder { return &Builder{seq: seq} }

// Add appends a record.
func (b *Builder) Add(r Record) *Builder {
	b.body = AppendRecord(b.body, r)
	if r.Op.Counted() {
		b.count++
	}
	return b
}

// Bytes returns the batch.
func (b *Builder) Bytes() []byte {
	out := make([]byte, HeaderLen, HeaderLen+len(b.body))
	binary.LittleEndian.PutUint64(out[0:8], b.seq)
	binary.LittleEndian.PutUint32(out[8:12], b.count)
	return append(out, b.body...)
}
