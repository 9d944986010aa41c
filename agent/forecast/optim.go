package forecast

import (
	"math"
	"sort"
)

// minimize runs the Nelder-Mead simplex method from x0 on f, at most
// maxEvals evaluations, and returns the best vertex of the last completed
// iteration and its value. It stops earlier once stall iterations in a row
// have improved the best value by no more than nmConvRel·|f| + nmConvAbs
// (nmConvIters or nmQuickIters). Non-finite objective values are treated
// as +Inf so the simplex steps away from them; a start at +Inf returns the
// zero vector and +Inf.
//
// It is evaluation for evaluation the method foreshape's fits have always
// used, gonum's optimize.Minimize with optimize.NelderMead{SimplexSize:
// 0.5} and optimize.FunctionConverge{Absolute: 1e-9, Relative: 1e-7,
// Iterations: stall} (TestMinimizeMatchesGonum holds it to that, bit for
// bit): the same initial simplex, coefficients, vertex order, centroid
// updates, convergence test and evaluation limit. It runs in the caller's
// goroutine; gonum's Minimize passes every evaluation through channels
// between three goroutines, which cost more than the smaller objectives
// themselves.
func minimize(f func(x []float64) float64, x0 []float64, maxEvals, stall int) ([]float64, float64) {
	return minimize4(f, nil, x0, maxEvals, stall)
}

// minimize4 is minimize with f4, when not nil, evaluating f at four points
// at once (to the bit what f gives at each): each iteration evaluates the
// reflection, the expansion and both contractions together before it
// knows which it needs, then takes the values of those it uses, in the
// order minimize evaluates them. The simplex, the evaluation count and
// the result are minimize's; four points cost f4 about what one costs f
// when f is a latency-bound recursion (css4ARMA11 and its kin).
func minimize4(f func(x []float64) float64, f4 func(xs *[4][]float64, out *[4]float64), x0 []float64, maxEvals, stall int) ([]float64, float64) {
	dim := len(x0)
	if dim == 0 {
		return x0, f(x0)
	}
	nm := nelderMead{f: f, f4: f4, maxEvals: maxEvals, stallIters: stall, best: make([]float64, dim), bestF: math.Inf(1)}
	nm.run(x0)
	return nm.best, nm.bestF
}

// Nelder-Mead's coefficients and the convergence test of minimize.
//
// nmConvIters is the stall of the ARIMA model's stepwise order search,
// whose orders have up to seven coefficients; nmQuickIters that of ETS and
// of auto's ARIMA candidate (at most four). With 25 most of the latter's
// fits ran to their evaluation limit; with 10 they take ~37% fewer
// evaluations and auto's, ets's and mstl's forecasts on the tuning series
// stay as they were to the fourth digit, while the stepwise search's got
// worse (rel_mase 0.428 -> 0.437 at one hour): see docs/forecasting.md,
// "Speed and cost".
const (
	nmSimplexSize = 0.5
	nmReflection  = 1.0
	nmConvAbs     = 1e-9
	nmConvRel     = 1e-7
	nmConvIters   = 25
	nmQuickIters  = 10
)

// nelderMead is one run of minimize. vertices are kept sorted by value,
// best first; the worst is vertices[dim].
type nelderMead struct {
	f          func(x []float64) float64
	f4         func(xs *[4][]float64, out *[4]float64)
	maxEvals   int
	stallIters int
	evals      int
	scratch    []float64

	vertices [][]float64
	values   []float64
	centroid []float64 // of every vertex but the worst

	// best is the best vertex at the last completed iteration.
	best  []float64
	bestF float64
	// The convergence test: the iterations since the best value last
	// improved by more than nmConvRel·|f| + nmConvAbs.
	started bool
	ref     float64
	stale   int
}

// eval evaluates f at x (on a copy, so f cannot disturb the simplex); stop
// is true when that evaluation used up the budget.
func (n *nelderMead) eval(x []float64) (v float64, stop bool) {
	copy(n.scratch, x)
	return n.counted(n.f(n.scratch))
}

// counted is eval's accounting of a value f returned.
func (n *nelderMead) counted(v float64) (float64, bool) {
	if math.IsNaN(v) {
		v = math.Inf(1)
	}
	n.evals++
	return v, n.maxEvals > 0 && n.evals >= n.maxEvals
}

// evalAhead is eval of x, or, when ahead, the accounting of v, the value
// f4 found at x before it was known to be needed.
func (n *nelderMead) evalAhead(x []float64, ahead bool, v float64) (float64, bool) {
	if ahead {
		return n.counted(v)
	}
	return n.eval(x)
}

// iteration records the best vertex at the end of an iteration and reports
// whether the run has converged.
func (n *nelderMead) iteration(x []float64, f float64) bool {
	copy(n.best, x)
	n.bestF = f
	if math.IsInf(f, -1) {
		return true
	}
	if !n.started {
		n.started, n.ref = true, f
		return false
	}
	maxAbs := math.Max(math.Abs(f), math.Abs(n.ref))
	if f < n.ref && n.ref-f > float64(nmConvRel*maxAbs)+nmConvAbs {
		n.ref, n.stale = f, 0
		return false
	}
	n.stale++
	return n.stale >= n.stallIters
}

func (n *nelderMead) run(x0 []float64) {
	dim := len(x0)
	n.scratch = make([]float64, dim)
	start := append([]float64(nil), x0...)
	f0, stop := n.eval(start)
	if stop || math.IsInf(f0, 1) {
		return
	}
	if n.iteration(start, f0) {
		return
	}
	// The initial simplex: the start and one step of nmSimplexSize along
	// each axis.
	n.vertices = make([][]float64, dim+1)
	n.values = make([]float64, dim+1)
	n.vertices[dim], n.values[dim] = start, f0
	for i := 0; i < dim; i++ {
		v := append([]float64(nil), start...)
		v[i] += nmSimplexSize
		fv, stop := n.eval(v)
		if stop {
			return
		}
		n.vertices[i], n.values[i] = v, fv
	}
	n.sortVertices()
	if n.iteration(n.vertices[0], n.values[0]) {
		return
	}
	expansion, contraction, shrink := 2.0, 0.5, 0.5
	if dim > 1 {
		expansion = 1 + 2/float64(dim)
		contraction = 0.75 - 1/(2*float64(dim))
		shrink = 1 - 1/float64(dim)
	}
	reflected := make([]float64, dim)
	trial := make([]float64, dim)
	// The points f4 evaluates ahead: reflection, expansion, outside and
	// inside contraction, each on a copy.
	var ahead [4][]float64
	var aheadF [4]float64
	if n.f4 != nil {
		for i := range ahead {
			ahead[i] = make([]float64, dim)
		}
	}
	for {
		n.along(reflected, nmReflection)
		if n.f4 != nil {
			copy(ahead[0], reflected)
			n.along(ahead[1], nmReflection*expansion)
			n.along(ahead[2], nmReflection*contraction)
			n.along(ahead[3], -contraction)
			n.f4(&ahead, &aheadF)
		}
		spec := n.f4 != nil
		fr, stop := n.evalAhead(reflected, spec, aheadF[0])
		if stop {
			return
		}
		worst := n.values[dim]
		shrinkNow := false
		switch {
		case fr >= n.values[0] && fr < n.values[dim-1]:
			n.replaceWorst(reflected, fr)
		case fr < n.values[0]:
			n.along(trial, nmReflection*expansion)
			fe, stop := n.evalAhead(trial, spec, aheadF[1])
			if stop {
				return
			}
			if fe < fr {
				n.replaceWorst(trial, fe)
			} else {
				n.replaceWorst(reflected, fr)
			}
		case fr < worst:
			n.along(trial, nmReflection*contraction)
			fc, stop := n.evalAhead(trial, spec, aheadF[2])
			if stop {
				return
			}
			if fc <= fr {
				n.replaceWorst(trial, fc)
			} else {
				shrinkNow = true
			}
		default:
			n.along(trial, -contraction)
			fc, stop := n.evalAhead(trial, spec, aheadF[3])
			if stop {
				return
			}
			if fc < worst {
				n.replaceWorst(trial, fc)
			} else {
				shrinkNow = true
			}
		}
		if shrinkNow {
			// Every vertex but the best moves towards the best.
			b := n.vertices[0]
			for i := 1; i <= dim; i++ {
				for j := range trial {
					trial[j] = float64((n.vertices[i][j]-b[j])*shrink) + b[j]
				}
				fs, stop := n.eval(trial)
				if stop {
					return
				}
				copy(n.vertices[i], trial)
				n.values[i] = fs
			}
			n.sortVertices()
		}
		if n.iteration(n.vertices[0], n.values[0]) {
			return
		}
	}
}

// along sets x to the point centroid + scale·(centroid − worst vertex).
func (n *nelderMead) along(x []float64, scale float64) {
	w := n.vertices[len(n.vertices)-1]
	for j, c := range n.centroid {
		x[j] = float64((c-w[j])*scale) + c
	}
}

// sortVertices orders the simplex by value and recomputes the centroid.
func (n *nelderMead) sortVertices() {
	sort.Sort(simplexOrder{n.vertices, n.values})
	dim := len(n.centroid)
	if n.centroid == nil {
		dim = len(n.values) - 1
		n.centroid = make([]float64, dim)
	}
	clear(n.centroid)
	for _, v := range n.vertices[:dim] {
		for j, x := range v {
			n.centroid[j] += x
		}
	}
	for j := range n.centroid {
		n.centroid[j] /= float64(dim)
	}
}

// replaceWorst puts x, better than the worst vertex, in its place, moves it
// up to its rank and updates the centroid.
func (n *nelderMead) replaceWorst(x []float64, f float64) {
	dim := len(x)
	if f >= n.values[dim] {
		panic("forecast: Nelder-Mead replacement does not improve the simplex")
	}
	copy(n.vertices[dim], x)
	n.values[dim] = f
	for i := dim - 1; i >= 0 && n.values[i] >= f; i-- {
		n.vertices[i], n.vertices[i+1] = n.vertices[i+1], n.vertices[i]
		n.values[i], n.values[i+1] = n.values[i+1], n.values[i]
	}
	out, in := -1/float64(dim), 1/float64(dim)
	for j, v := range n.vertices[dim] {
		n.centroid[j] += float64(out * v)
	}
	for j, v := range x {
		n.centroid[j] += float64(in * v)
	}
}

// simplexOrder sorts vertices by their values.
type simplexOrder struct {
	vertices [][]float64
	values   []float64
}

func (s simplexOrder) Len() int           { return len(s.values) }
func (s simplexOrder) Less(i, j int) bool { return s.values[i] < s.values[j] }
func (s simplexOrder) Swap(i, j int) {
	s.values[i], s.values[j] = s.values[j], s.values[i]
	s.vertices[i], s.vertices[j] = s.vertices[j], s.vertices[i]
}

func sigmoid(u float64) float64 { return 1 / (1 + math.Exp(-u)) }

func logit(p float64) float64 {
	p = math.Min(math.Max(p, 1e-6), 1-1e-6)
	return math.Log(p / (1 - p))
}

// aicc is the corrected Akaike criterion of a Gaussian model with the given
// sum of squared errors over n residuals and k estimated parameters (the
// residual variance is counted as one more).
func aicc(sse float64, n, k int) float64 {
	if n <= k+2 || sse <= 0 {
		if sse <= 0 {
			sse = 1e-300
		}
		if n <= k+2 {
			return math.Inf(1)
		}
	}
	nf, kf := float64(n), float64(k+1)
	return float64(nf*math.Log(sse/nf)) + float64(2*kf) + 2*kf*(kf+1)/(nf-kf-1)
}
