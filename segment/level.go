package segment

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Level is the zstd effort a writer spends on an object's body. It is a
// writer's choice and not part of the format: every level writes a zstd
// frame with the same window and checksum, which any reader decodes, so
// objects written at different levels mix freely in one bucket. Tailer
// seals hot segments fast (CPU at the head is what limits shipping) and
// lets compaction rewrite the wide segments smaller.
type Level int

// The levels, from fastest to smallest output. The zero Level means
// LevelDefault, the level writers have always used.
const (
	// LevelFastest is zstd's fastest mode (about zstd -1).
	LevelFastest Level = iota + 1
	// LevelDefault is zstd's default mode (about zstd -3), what writers use
	// without WithLevel; its output is byte-identical to earlier tailers'.
	LevelDefault
	// LevelBetter compresses better than LevelDefault for more CPU (about
	// zstd -7).
	LevelBetter
	// LevelBest is zstd's strongest mode in this encoder (about zstd -11),
	// several times slower than LevelBetter.
	LevelBest
)

// Levels lists every valid Level, fastest first, for benchmarks and
// validation messages.
func Levels() []Level { return []Level{LevelFastest, LevelDefault, LevelBetter, LevelBest} }

// Valid reports whether l is one of Levels or the zero Level (which
// means LevelDefault), i.e. whether a writer accepts it.
func (l Level) Valid() bool {
	_, err := l.encoderLevel()
	return err == nil
}

// String names the level as ParseLevel accepts it.
func (l Level) String() string {
	switch l {
	case 0, LevelDefault:
		return "default"
	case LevelFastest:
		return "fastest"
	case LevelBetter:
		return "better"
	case LevelBest:
		return "best"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel reads a level name ("fastest", "default", "better", "best"),
// so that a configuration can name one.
func ParseLevel(s string) (Level, error) {
	for _, l := range Levels() {
		if l.String() == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("%w: %q (want fastest, default, better or best)", ErrUnknownLevel, s)
}

// encoderLevel maps a Level to zstd's.
func (l Level) encoderLevel() (zstd.EncoderLevel, error) {
	switch l {
	case 0, LevelDefault:
		return zstd.SpeedDefault, nil
	case LevelFastest:
		return zstd.SpeedFastest, nil
	case LevelBetter:
		return zstd.SpeedBetterCompression, nil
	case LevelBest:
		return zstd.SpeedBestCompression, nil
	}
	return 0, fmt.Errorf("%w: %d", ErrUnknownLevel, int(l))
}

// WriterOption changes how NewSegmentWriter and NewExportWriter write an
// object's body (never what the object holds).
type WriterOption func(*writerConfig)

type writerConfig struct {
	level Level
	pool  *Encoders
}

// WithLevel sets the zstd level of the body (default LevelDefault). An
// unknown level makes the constructor fail with ErrUnknownLevel.
func WithLevel(l Level) WriterOption { return func(c *writerConfig) { c.level = l } }

// WithEncoders makes the writer take its zstd encoder from p and give it
// back at a successful Close, instead of allocating one (a few MB) per
// object: a process sealing many small segments keeps one Encoders.
// Output is byte-identical either way.
func WithEncoders(p *Encoders) WriterOption { return func(c *writerConfig) { c.pool = p } }

// Encoders keeps idle zstd encoders for reuse by writers (see
// WithEncoders), one set per kind and level. The zero value is ready; it
// is safe for concurrent use by writers on different goroutines.
type Encoders struct {
	mu   sync.Mutex
	idle map[encoderKey][]*zstd.Encoder
}

type encoderKey struct {
	kind  Kind
	level zstd.EncoderLevel
}

// maxIdle bounds the encoders kept per kind and level: a pipeline seals a
// few segments at once, and more idle ones would only hold memory.
const maxIdle = 4

func (p *Encoders) get(k encoderKey) *zstd.Encoder {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[k]
	if len(l) == 0 {
		return nil
	}
	e := l[len(l)-1]
	p.idle[k] = l[:len(l)-1]
	return e
}

func (p *Encoders) put(k encoderKey, e *zstd.Encoder) {
	e.Reset(nil) // drop the reference to the finished object's destination
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		p.idle = map[encoderKey][]*zstd.Encoder{}
	}
	if len(p.idle[k]) < maxIdle {
		p.idle[k] = append(p.idle[k], e)
	}
}
