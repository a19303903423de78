// Package diskguard watches the free space of the filesystems tailer
// writes to beside the mail server's store. tailer's spool and WAL pins
// live on the store's filesystem; a backup that fills it stops the mail
// server from writing, which is worse than a gap in the backup. The guard
// says when to stop using that space (free space below a threshold) and,
// with some hysteresis, when to start again.
package diskguard

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Threshold is the free space to keep on a filesystem: a share of its
// size (Percent) or a number of bytes (Bytes), whichever is set. The zero
// Threshold keeps nothing: the guard is off.
type Threshold struct {
	Percent float64 // of the filesystem's size, 0 to 100
	Bytes   uint64
}

// Default is the threshold when none is configured: 5% of the filesystem.
var Default = Threshold{Percent: 5}

// Enabled reports whether the threshold guards anything.
func (t Threshold) Enabled() bool { return t.Percent > 0 || t.Bytes > 0 }

// String renders the threshold as Parse reads it.
func (t Threshold) String() string {
	switch {
	case t.Percent > 0:
		return strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
	case t.Bytes > 0:
		return strconv.FormatUint(t.Bytes, 10) + "B"
	}
	return "0"
}

// minFree is the free bytes below which a filesystem of total bytes is low.
func (t Threshold) minFree(total uint64) uint64 {
	if t.Percent > 0 {
		return uint64(math.Ceil(float64(total) * t.Percent / 100))
	}
	return t.Bytes
}

// ErrThreshold is wrapped by Parse for a value it cannot take.
var ErrThreshold = errors.New("want a percentage of the filesystem (e.g. 5%, at most 100%), a size (e.g. 2GiB, 500MB, 1073741824) or 0 to disable")

// units are the size suffixes Parse accepts, longest first within a
// family so "GiB" is not read as "G" + "iB".
var units = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// Parse reads a threshold: "5%" (of the filesystem's size, up to 100%),
// a size with an optional unit, in any case ("2GiB", "500MB", "1.5G",
// "1073741824"; K, M, G, T alone are binary), or "0" (no guard).
func Parse(s string) (Threshold, error) {
	v := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		switch {
		case err != nil || math.IsNaN(f):
			return Threshold{}, fmt.Errorf("%q is not a percentage: %w", s, ErrThreshold)
		case f < 0:
			return Threshold{}, fmt.Errorf("%q is negative: %w", s, ErrThreshold)
		case f > 100:
			return Threshold{}, fmt.Errorf("%q is more than the whole filesystem: %w", s, ErrThreshold)
		}
		return Threshold{Percent: f}, nil
	}
	num, mult := v, 1.0
	for _, u := range units {
		if n := len(v) - len(u.suffix); n >= 0 && strings.EqualFold(v[n:], u.suffix) {
			num, mult = strings.TrimSpace(v[:n]), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	switch {
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		return Threshold{}, fmt.Errorf("%q is not a size: %w", s, ErrThreshold)
	case f < 0:
		return Threshold{}, fmt.Errorf("%q is negative: %w", s, ErrThreshold)
	case f*mult >= math.MaxUint64:
		return Threshold{}, fmt.Errorf("%q is too large: %w", s, ErrThreshold)
	}
	return Threshold{Bytes: uint64(f * mult)}, nil
}

// Space is what a filesystem has: bytes an unprivileged writer may still
// use, and its size.
type Space struct {
	Free, Total uint64
}

// FreeFunc measures the filesystem holding path (Statfs; tests inject
// their own to simulate a full disk).
type FreeFunc func(path string) (Space, error)

// Reading is one filesystem's space, named by the path it was measured at.
type Reading struct {
	Path string
	Space
}

// Guard decides, at each Check, whether free space is low. It trips when
// any path's filesystem has less free space than the threshold and
// releases once every one has the threshold plus 1% of its size again, so
// a filesystem hovering at the threshold does not flap. A Guard is used by
// one goroutine.
type Guard struct {
	min    Threshold
	free   FreeFunc
	paths  []string
	active bool
}

// New returns a guard keeping min free on the filesystems of paths,
// measured with free (nil: Statfs).
func New(min Threshold, free FreeFunc, paths ...string) *Guard {
	if free == nil {
		free = Statfs
	}
	seen := map[string]bool{}
	var ps []string
	for _, p := range paths {
		if p != "" && !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	return &Guard{min: min, free: free, paths: ps}
}

// Active reports whether the guard tripped at the last Check.
func (g *Guard) Active() bool { return g.active }

// Check measures every path and returns whether the guard is active now,
// whether that changed with this Check, and the reading that decided it:
// the lowest filesystem (by free share). A path that cannot be measured
// is an error and leaves the state as it was.
func (g *Guard) Check() (active, changed bool, r Reading, err error) {
	if !g.min.Enabled() {
		return false, false, Reading{}, nil
	}
	var worst Reading
	low, recovered := false, true
	for i, p := range g.paths {
		sp, err := g.free(p)
		if err != nil {
			return g.active, false, Reading{}, fmt.Errorf("free space of the filesystem of %s: %w", p, err)
		}
		need := g.min.minFree(sp.Total)
		if sp.Free < need {
			low = true
		}
		if sp.Free < need+sp.Total/100 {
			recovered = false
		}
		if i == 0 || share(sp) < share(worst.Space) {
			worst = Reading{Path: p, Space: sp}
		}
	}
	was := g.active
	switch {
	case !g.active && low:
		g.active = true
	case g.active && recovered:
		g.active = false
	}
	return g.active, g.active != was, worst, nil
}

// Threshold is the threshold the guard keeps, for logs.
func (g *Guard) Threshold() Threshold { return g.min }

func share(s Space) float64 {
	if s.Total == 0 {
		return 0
	}
	return float64(s.Free) / float64(s.Total)
}
