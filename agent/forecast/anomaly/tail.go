package anomaly

import "math"

// tailRank calibrates a nonconformity statistic against its own recent
// past: the conformal p-value of a new value among the last n values
// (#past ≥ x + 1)/(n + 1), with an exponential tail beyond the Tail-th
// largest past value, so that a value far beyond everything seen gets a
// p-value far below 1/(n+1) rather than stopping there. The exponential's
// scale is the mean excess of the largest values over the Tail-th (a
// peaks-over-threshold estimate, as in extreme-value detectors). It is the
// same p-value on every series: the threshold on it means the same rarity
// whatever the series' units or noise.
type tailRank struct {
	w    *sortedWindow
	tail int
}

// minP is the smallest p-value given, so that log(1/P) stays finite.
const minP = 1e-300

func newTailRank(memory, tail int) *tailRank {
	return &tailRank{w: newSortedWindow(memory), tail: tail}
}

// Len is the number of past values held.
func (r *tailRank) Len() int { return r.w.Len() }

// Add records a value (NaN is ignored).
func (r *tailRank) Add(x float64) { r.w.Add(x) }

// P returns the p-value of x among the values held (1 when none).
func (r *tailRank) P(x float64) float64 {
	w := r.w
	n := w.Len()
	if n == 0 || math.IsNaN(x) {
		return 1
	}
	ge := n - w.Less(x) // #past >= x
	if k := min(r.tail, n/4); k >= 2 && ge < k {
		zk := w.At(n - k)
		var excess float64
		for i := n - k + 1; i < n; i++ {
			excess += w.At(i) - zk
		}
		if beta := excess / float64(k-1); beta > 0 && x > zk {
			return math.Max(float64(k)/float64(n+1)*math.Exp(-(x-zk)/beta), minP)
		}
	}
	return float64(ge+1) / float64(n+1)
}
