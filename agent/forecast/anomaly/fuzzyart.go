package anomaly

import "math"

// fuzzyART is the clustering ARTime runs: fuzzy adaptive resonance theory
// (Carpenter, Grossberg and Rosen, 1991) with dual vigilance, on
// complement-coded vectors (x, 1-x), as ARTime's compact edition of
// AdaptiveResonance.jl's DVFA has it.
//
// A category's weights w are the componentwise minimum of the vectors it
// learnt: with complement coding, a box. The match of a vector x with a
// category is (|x∧w|/|w|)³ · e², where e is the same ratio over the
// latest value alone (its two complement-coded components). The best
// match decides: at least rhoUB, every category matching that well learns
// x (w ← x∧w); at least rhoLB, x starts a category of its own, kin to the
// best; below rhoLB, x is novel and starts a new category too.
//
// The first vector ever only creates a blank category (all ones), which
// matches every vector at 1/32 and, with the vigilances ARTime sets,
// never learns.
type fuzzyART struct {
	dim          int // of a coded vector
	max          int
	w            []float64 // n categories × dim
	norm         []float64 // |w| of each category
	used         []int     // when each last matched best or learnt
	n            int
	clock        int
	blank        bool // category 0 is still blank
	rhoLB, rhoUB float64
	m            []float64 // scratch: the matches
}

func (f *fuzzyART) init(dim, maxCategories int) {
	*f = fuzzyART{dim: dim, max: maxCategories}
}

// train presents the coded vector x and returns its best match, that
// category's energy match, and whether x was novel (no category matched it
// at rhoLB; always false when not learning and for the very first vector).
func (f *fuzzyART) train(x []float64, learning bool) (sim, energy float64, novel bool) {
	f.clock++
	if f.n == 0 {
		f.add(nil)
		f.blank = true
		return 0, 0, false
	}
	dim := f.dim
	f.m = f.m[:0]
	best := -1
	// The boxes' overlaps with x, four categories at a time: each sum
	// runs in order on its own, and the four overlap.
	j := 0
	for ; j+4 <= f.n; j += 4 {
		w0 := f.w[j*dim : (j+1)*dim]
		w1 := f.w[(j+1)*dim : (j+2)*dim]
		w2 := f.w[(j+2)*dim : (j+3)*dim]
		w3 := f.w[(j+3)*dim : (j+4)*dim]
		x := x[:dim]
		var n0, n1, n2, n3 float64
		for k, xk := range x {
			n0 += minCoded(xk, w0[k])
			n1 += minCoded(xk, w1[k])
			n2 += minCoded(xk, w2[k])
			n3 += minCoded(xk, w3[k])
		}
		for c, num := range [4]float64{n0, n1, n2, n3} {
			m, es := f.match(j+c, x, num)
			f.m = append(f.m, m)
			if m > sim {
				sim, energy, best = m, es, j+c
			}
		}
	}
	for ; j < f.n; j++ {
		w := f.w[j*dim : (j+1)*dim]
		var num float64
		x := x[:len(w)]
		for k, v := range w {
			num += minCoded(x[k], v)
		}
		m, es := f.match(j, x, num)
		f.m = append(f.m, m)
		if m > sim {
			sim, energy, best = m, es, j
		}
	}
	if !learning {
		return sim, energy, true
	}
	switch {
	case best >= 0 && sim >= f.rhoUB:
		for j := 0; j < f.n; j++ {
			if f.m[j] >= f.rhoUB {
				f.learn(j, x)
			}
		}
		f.used[best] = f.clock
	case best >= 0 && sim >= f.rhoLB:
		f.used[best] = f.clock
		f.add(x)
	default:
		f.add(x)
		novel = true
	}
	return sim, energy, novel
}

// minCoded is the smaller of a coded value x and a weight v, without a
// branch. It differs from "x if x < v, else v" only in the sign of a zero
// (min(-0, +0) is -0), which no sum of them shows: the sums start at +0,
// and adding a zero of either sign to anything but -0 changes nothing.
// The coded values are never NaN.
func minCoded(x, v float64) float64 { return min(x, v) }

// match is category j's match with x, whose overlap with its box is num,
// and its energy match.
func (f *fuzzyART) match(j int, x []float64, num float64) (m, es float64) {
	dim := f.dim
	ei, ee := dim/2-1, dim-1
	w := f.w[j*dim : (j+1)*dim]
	nw := f.norm[j]
	if nw == 0 {
		nw = 0.001
	}
	fs := num / nw
	es = 1.0
	if we := w[ei] + w[ee]; we != 0 {
		es = (math.Min(x[ei], w[ei]) + math.Min(x[ee], w[ee])) / we
	}
	return fs * fs * fs * es * es, es
}

// learn makes category j's box take in x.
func (f *fuzzyART) learn(j int, x []float64) {
	w := f.w[j*f.dim : (j+1)*f.dim]
	var norm float64
	for k, v := range w {
		if x[k] < v {
			w[k] = x[k]
		}
		norm += w[k]
	}
	f.norm[j] = norm
	f.used[j] = f.clock
	if j == 0 {
		f.blank = false
	}
}

// add starts a category with x (nil: the blank one). At MaxCategories the
// least recently used category (never the blank one) makes way.
func (f *fuzzyART) add(x []float64) {
	j := f.n
	if f.n >= f.max {
		j = -1
		for k := range f.n {
			if k == 0 && f.blank {
				continue
			}
			if j < 0 || f.used[k] < f.used[j] {
				j = k
			}
		}
	} else {
		f.w = append(f.w, make([]float64, f.dim)...)
		f.norm = append(f.norm, 0)
		f.used = append(f.used, 0)
		f.n++
	}
	w := f.w[j*f.dim : (j+1)*f.dim]
	var norm float64
	for k := range w {
		if x == nil {
			w[k] = 1
		} else {
			w[k] = x[k]
		}
		norm += w[k]
	}
	f.norm[j] = norm
	f.used[j] = f.clock
}

// rescale maps the boxes' value features (the second half of each
// window's features: indices window..2·window-1, and their complements)
// through the increasing map to.
func (f *fuzzyART) rescale(window int, to func(float64) float64) {
	half := f.dim / 2
	for j := 0; j < f.n; j++ {
		if j == 0 && f.blank {
			continue
		}
		w := f.w[j*f.dim : (j+1)*f.dim]
		for k := window; k < half; k++ {
			w[k] = to(w[k])
			w[half+k] = 1 - to(1-w[half+k])
		}
		var norm float64
		for _, v := range w {
			norm += v
		}
		f.norm[j] = norm
	}
}
