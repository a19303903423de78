package segment

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is. Every error a Reader returns about the
// object's content is an *Error wrapping one of these (or, for a failed
// read of the underlying storage, the storage's own error, which is not
// ErrCorrupt: retrying may help).
var (
	// ErrCorrupt means the object is damaged or truncated: restore it from
	// another replica or re-export. Retrying the same bytes will not help.
	ErrCorrupt = errors.New("the object is corrupt; restore it from another replica or re-export")
	// ErrVersion means the object was written by a newer (or unknown)
	// format version than this tailer reads.
	ErrVersion = errors.New("unsupported format version")
	// ErrKind means a segment was used as an export or the other way round.
	ErrKind = errors.New("wrong object kind")
	// ErrUnknownLevel means a writer was asked for a compression Level
	// this tailer does not know (see Levels).
	ErrUnknownLevel = errors.New("unknown compression level")
)

// Error describes a problem with one object: which object, what is wrong,
// and the byte range concerned. Start and End are object offsets (End
// exclusive); both are 0 when the problem is not about one range.
type Error struct {
	Object     string // "segment <name>", "export <name>" or "object <name>"
	Start, End int64
	Err        error // ErrCorrupt, ErrVersion, ErrKind or a storage error
	msg        string
}

// Error returns the full message, e.g. "segment g/x.tseg: body checksum
// mismatch over bytes 61..4096 (want …, got …): the object is corrupt;
// restore it from another replica or re-export".
func (e *Error) Error() string { return e.msg }

// Unwrap returns the sentinel or storage error, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

func newError(object string, start, end int64, sentinel error, format string, args ...any) *Error {
	msg := object + ": " + fmt.Sprintf(format, args...)
	switch sentinel {
	case ErrCorrupt, ErrKind:
		msg += ": " + sentinel.Error()
	case ErrVersion:
		// The message is complete on its own ("... upgrade tailer").
	default:
		msg += ": " + sentinel.Error()
	}
	return &Error{Object: object, Start: start, End: end, Err: sentinel, msg: msg}
}
