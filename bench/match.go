package bench

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
)

// commit is one transaction of the load generator: its last sequence
// number and when it committed on the primary (AfterTx, in the bench).
type commit struct {
	seq uint64
	t   time.Time
}

// confirmed is one segment the bucket acknowledged: the batches
// First..Last became durable in the replica at T.
type confirmed struct {
	First, Last uint64
	T           time.Time
}

// confirmations are the segments that became visible among reqs (a 2xx to
// a single PUT or to the POST completing a multipart upload), their range
// read from the key with layout.Parse, as restore reads it. prefix is the
// replica prefix the keys are under.
func confirmations(reqs []Request, prefix string) []confirmed {
	var out []confirmed
	for _, x := range reqs {
		if !x.Visible || x.Status/100 != 2 {
			continue
		}
		key, ok := strings.CutPrefix(x.Key, prefix+"/")
		if !ok {
			continue
		}
		gens, _ := layout.Parse([]layout.Object{{Key: key}})
		for _, g := range gens {
			for _, s := range g.Segments {
				out = append(out, confirmed{First: s.First, Last: s.Last, T: x.T})
			}
		}
	}
	return out
}

// exportVisible reports whether an export became visible among reqs.
func exportVisible(reqs []Request) bool {
	for _, x := range reqs {
		if _, kind := classify(x); kind == kindExport && x.Visible && x.Status/100 == 2 {
			return true
		}
	}
	return false
}

// covers reports whether a confirmed segment holds seq.
func covers(segs []confirmed, seq uint64) bool {
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].First <= seq && seq <= segs[i].Last {
			return true
		}
	}
	return false
}

// lags returns, for each commit, the time from its commit to the earliest
// confirmation of a segment whose range holds its sequence number (a
// retried upload or a later compacted segment covering it too does not
// count twice), in seconds; unmatched counts the commits no confirmed
// segment holds.
func lags(commits []commit, segs []confirmed) (out []float64, unmatched int) {
	byT := append([]confirmed(nil), segs...)
	sort.SliceStable(byT, func(i, j int) bool { return byT[i].T.Before(byT[j].T) })
	idx := make([]int, len(commits)) // commits sorted by seq
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return commits[idx[a]].seq < commits[idx[b]].seq })
	done := make([]bool, len(commits))
	lag := make([]float64, len(commits))
	for _, s := range byT {
		lo := sort.Search(len(idx), func(i int) bool { return commits[idx[i]].seq >= s.First })
		for i := lo; i < len(idx) && commits[idx[i]].seq <= s.Last; i++ {
			if c := idx[i]; !done[c] {
				done[c], lag[c] = true, s.T.Sub(commits[c].t).Seconds()
			}
		}
	}
	for c := range commits {
		if done[c] {
			out = append(out, lag[c])
		} else {
			unmatched++
		}
	}
	return out, unmatched
}

// quantile is the nearest-rank q-quantile of xs (sorted in place); -1
// (shown as n/a; JSON has no NaN) when xs is empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	sort.Float64s(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// ratio is a ÷ b, or -1 (n/a) when either is unknown (negative) or b is 0.
func ratio(a, b float64) float64 {
	if a < 0 || b <= 0 {
		return -1
	}
	return a / b
}

// perHour extrapolates n events in el to one hour.
func perHour(n int64, el time.Duration) float64 {
	if el <= 0 {
		return 0
	}
	return float64(n) * float64(time.Hour) / float64(el)
}
