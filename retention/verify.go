package retention

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/segment"
	"github.com/tailer-backup/tailer/uploader"
)

// Unverified is an export retention did not count because it does not
// verify. It is left in place; an operator should look at it (`tailer
// verify`) and take a new export if it is the newest.
type Unverified struct {
	Key string
	Err error
}

// VerifyCache remembers the outcome of verifying exports, by replica, key,
// size and modification time, so that the run loop, which applies
// retention every few minutes, reads each export in full once rather than
// every round. Only outcomes about the bytes themselves are remembered (an
// export that verified, or one that is damaged); a failed read is tried
// again next time. It is safe for concurrent use. The zero value is not
// usable; call NewVerifyCache.
type VerifyCache struct {
	mu sync.Mutex
	m  map[cacheKey]error
}

type cacheKey struct {
	replica, key string
	size         int64
	modified     time.Time
}

// NewVerifyCache returns an empty cache.
func NewVerifyCache() *VerifyCache { return &VerifyCache{m: map[cacheKey]error{}} }

func (c *VerifyCache) get(k cacheKey) (error, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err, ok := c.m[k]
	return err, ok
}

func (c *VerifyCache) put(k cacheKey, err error) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = err
}

// forget drops the entries of replica whose objects are no longer listed.
func (c *VerifyCache) forget(replica string, listed map[cacheKey]bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if k.replica == replica && !listed[k] {
			delete(c.m, k)
		}
	}
}

// aboutTheBytes says whether err is about the object's content (stable)
// rather than about reading it.
func aboutTheBytes(err error) bool {
	return errors.Is(err, segment.ErrCorrupt) || errors.Is(err, segment.ErrVersion) ||
		errors.Is(err, segment.ErrKind) || errors.Is(err, catalog.ErrWrongPlace)
}

// verifier answers decide's question "does this export verify?" against
// a replica, remembering answers in the run and in the cache, and
// records the exports that do not.
type verifier struct {
	ctx      context.Context
	r        uploader.Replica
	cache    *VerifyCache
	framing  map[string]error // exports whose header could not even be read
	log      *slog.Logger
	rep      *Report
	canceled error
}

func (v *verifier) key(e layout.Export) cacheKey {
	return cacheKey{replica: v.r.String(), key: e.Key, size: e.Size, modified: e.Modified}
}

func (v *verifier) ok(g layout.Generation, e layout.Export) bool {
	if v.canceled != nil {
		return false
	}
	k := v.key(e)
	err, cached := v.cache.get(k)
	if !cached {
		if ferr, bad := v.framing[e.Key]; bad {
			err = ferr
		} else {
			v.log.Info("retention: verifying export", "key", e.Key, "bytes", e.Size)
			_, err = catalog.VerifyExport(v.ctx, v.r, g.ID, e)
		}
		if v.ctx.Err() != nil {
			v.canceled = v.ctx.Err()
			return false
		}
		if err == nil || aboutTheBytes(err) {
			v.cache.put(k, err)
		}
	}
	if err == nil {
		return true
	}
	v.rep.Unverified = append(v.rep.Unverified, Unverified{Key: e.Key, Err: err})
	msg := "retention: EXPORT DOES NOT VERIFY; it is kept but not counted as a restorable base, so older exports and their segments stay (check it with `tailer verify`; take a new export)"
	if !aboutTheBytes(err) {
		msg = "retention: cannot read the export to verify it; it is kept but not counted as a restorable base this round"
	}
	v.log.Error(msg, "key", e.Key, "generation", g.ID, "err", err)
	return false
}
