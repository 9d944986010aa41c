package forecast

import (
	"fmt"
	"iter"
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// ARIMA with automatic order selection, Hyndman–Khandakar style:
//
//   - the differencing order d (0, 1 or 2) is the smallest for which the
//     KPSS level-stationarity test does not reject at 5% (statistic below
//     0.463);
//   - the orders p, q ≤ maxARIMAOrder are searched stepwise by AICc: start
//     from (2,d,2), (0,d,0), (1,d,0), (0,d,1), then move p and/or q by one
//     and toggle the constant (the mean, or the drift when d = 1) while the
//     AICc improves;
//   - the search runs on the last arimaSearchPoints points and the chosen
//     order is re-estimated on up to maxFitPoints;
//   - each model is fitted by conditional sum of squares (CSS): the
//     one-step errors are computed recursively with pre-sample errors set to
//     zero and their sum of squares minimised with Nelder-Mead. The AR and
//     MA polynomials are parameterised by partial autocorrelations in
//     (−1, 1) (Jones' transform through the Durbin-Levinson recursion), so
//     every candidate is stationary and invertible.
//
// Parameters are estimated on at most maxFitPoints recent points; the state
// (the last p differenced values, q errors and d levels) runs over the whole
// history, so Update is O(p+q+d) per observation.

// maxARIMAOrder bounds p and q in the stepwise search.
const maxARIMAOrder = 3

// kpssCritical5 is the 5% critical value of the KPSS level-stationarity
// statistic (Kwiatkowski et al. 1992, table 1).
const kpssCritical5 = 0.463

// KPSS returns the KPSS statistic for level stationarity of x, with the
// Newey-West long-run variance over trunc(4·(n/100)^¼) lags. Large values
// (above 0.463 at 5%) reject stationarity. NaN points are dropped.
func KPSS(x []float64) float64 {
	var v []float64
	for _, a := range x {
		if num.Finite(a) {
			v = append(v, a)
		}
	}
	n := len(v)
	if n < 4 {
		return 0
	}
	m := num.Mean(v)
	e := make([]float64, n)
	for i, a := range v {
		e[i] = a - m
	}
	var s, eta float64
	for _, a := range e {
		s += a
		eta += float64(s * s)
	}
	eta /= float64(n) * float64(n)
	l := int(4 * math.Pow(float64(n)/100, 0.25))
	var g0 float64
	for _, a := range e {
		g0 += float64(a * a)
	}
	lr := g0 / float64(n)
	for k := 1; k <= l && k < n; k++ {
		var g float64
		for i := k; i < n; i++ {
			g += float64(e[i] * e[i-k])
		}
		lr += 2 * (1 - float64(k)/float64(l+1)) * g / float64(n)
	}
	if lr <= 0 {
		return 0
	}
	return eta / lr
}

// ndiffs is the number of differences KPSS asks for, at most 2.
func ndiffs(x []float64) int {
	d := 0
	for d < 2 && KPSS(x) > kpssCritical5 {
		x = diff(x)
		d++
	}
	return d
}

// diff is the first difference of x (NaN where either side is NaN).
func diff(x []float64) []float64 {
	if len(x) < 2 {
		return nil
	}
	out := make([]float64, len(x)-1)
	for i := range out {
		out[i] = x[i+1] - x[i]
	}
	return out
}

// arimaOrder is (p, d, q) plus whether a constant is estimated.
type arimaOrder struct {
	p, d, q  int
	constant bool
}

func (o arimaOrder) String() string {
	c := ""
	if o.constant {
		c = "+c"
	}
	return fmt.Sprintf("arima(%d,%d,%d%s)", o.p, o.d, o.q, c)
}

// pacfToCoef maps partial autocorrelations in (−1, 1) to the coefficients
// of a stationary AR polynomial (Durbin-Levinson).
func pacfToCoef(r []float64, out []float64) {
	p := len(r)
	var small [8]float64 // the orders fitted here: no allocation
	var tmp []float64
	if p <= len(small) {
		tmp = small[:p]
	} else {
		tmp = make([]float64, p)
	}
	for k := 0; k < p; k++ {
		out[k] = r[k]
		for j := 0; j < k; j++ {
			tmp[j] = out[j] - r[k]*out[k-1-j]
		}
		copy(out[:k], tmp[:k])
	}
}

// arimaCore is a fitted ARIMA(p,d,q) model with its running state.
type arimaCore struct {
	ord   arimaOrder
	phi   []float64
	theta []float64
	mu    float64 // mean of the differenced series
	sse   float64
	nobs  int
	ic    float64
	// state
	w      []float64 // last p differenced values minus mu, w[0] most recent
	e      []float64 // last q errors, e[0] most recent
	levels []float64 // last d+1 raw values needed to difference, [0] most recent
	nlev   int
}

// decodeARIMA maps the optimiser's unconstrained vector to coefficients.
func decodeARIMA(o arimaOrder, x []float64, phi, theta []float64) float64 {
	var rs, ss [8]float64 // the orders fitted here: no allocation
	var r, s []float64
	if o.p <= len(rs) && o.q <= len(ss) {
		r, s = rs[:o.p], ss[:o.q]
	} else {
		r, s = make([]float64, o.p), make([]float64, o.q)
	}
	for i := range r {
		r[i] = num.Tanh(x[i])
	}
	pacfToCoef(r, phi)
	for i := range s {
		s[i] = num.Tanh(x[o.p+i])
	}
	// An invertible MA polynomial 1 + θ1 B + … maps from the same
	// transform with the sign flipped.
	pacfToCoef(s, theta)
	for i := range theta {
		theta[i] = -theta[i]
	}
	if o.constant {
		return x[o.p+o.q]
	}
	return 0
}

// cssARIMA is the conditional sum of squares of w (already differenced)
// under the coefficients, and the number of terms.
func cssARIMA(w []float64, phi, theta []float64, mu float64, ebuf []float64) (float64, int) {
	p, q := len(phi), len(theta)
	for i := range ebuf {
		ebuf[i] = 0
	}
	// A missing value among the first p, which no forecast fills, is
	// taken at the mean, so that it does not make every later term NaN.
	for t := 0; t < p && t < len(w); t++ {
		if !num.Finite(w[t]) {
			w[t] = mu
		}
	}
	sse, k := 0.0, 0
	for t := p; t < len(w); t++ {
		f := mu
		for i := 0; i < p; i++ {
			f += float64(phi[i] * (w[t-1-i] - mu))
		}
		for j := 0; j < q && t-1-j >= 0; j++ {
			f += float64(theta[j] * ebuf[t-1-j])
		}
		e := 0.0
		if num.Finite(w[t]) {
			e = w[t] - f
			sse += float64(e * e)
			k++
		} else {
			w[t] = f
		}
		ebuf[t] = e
	}
	return sse, k
}

// cssComplete is cssARIMA's sum of squares for a w without missing
// values, which it leaves as it is. The orders auto's ARIMA candidate
// fits by CSS, ARMA(1,1), (2,1) and (1,2), have their own loops with the
// coefficients and the last errors in registers: the same operations in
// the same order as cssARIMA, so the same sum to the bit
// (TestCSSCompleteMatchesGeneric), in about half the time.
func cssComplete(w []float64, phi, theta []float64, mu float64, ebuf []float64) float64 {
	n := len(w)
	switch {
	case len(phi) == 1 && len(theta) == 1 && n > 1:
		a0, t0 := phi[0], theta[0]
		sse, e1 := 0.0, 0.0
		for t := 1; t < n; t++ {
			f := mu
			f += float64(a0 * (w[t-1] - mu))
			f += float64(t0 * e1)
			e := w[t] - f
			sse += float64(e * e)
			e1 = e
		}
		return sse
	case len(phi) == 2 && len(theta) == 1 && n > 2:
		a0, a1, t0 := phi[0], phi[1], theta[0]
		sse, e1 := 0.0, 0.0
		for t := 2; t < n; t++ {
			f := mu
			f += float64(a0 * (w[t-1] - mu))
			f += float64(a1 * (w[t-2] - mu))
			f += float64(t0 * e1)
			e := w[t] - f
			sse += float64(e * e)
			e1 = e
		}
		return sse
	case len(phi) == 1 && len(theta) == 2 && n > 2:
		a0, t0, t1 := phi[0], theta[0], theta[1]
		// t = 1: no error two steps back yet.
		sse, e0 := 0.0, 0.0
		f := mu
		f += float64(a0 * (w[0] - mu))
		f += float64(t0 * e0)
		e1 := w[1] - f
		sse += float64(e1 * e1)
		e2 := 0.0
		for t := 2; t < n; t++ {
			f := mu
			f += float64(a0 * (w[t-1] - mu))
			f += float64(t0 * e1)
			f += float64(t1 * e2)
			e := w[t] - f
			sse += float64(e * e)
			e1, e2 = e, e1
		}
		return sse
	}
	sse, _ := cssARIMA(w, phi, theta, mu, ebuf)
	return sse
}

// fitARIMA fits one order to the differenced series w; its optimiser stops
// after stall iterations without progress (minimize).
func fitARIMA(w []float64, ord arimaOrder, scale float64, stall int) *arimaCore {
	f := newARIMAFit(w, ord, scale)
	complete := num.CountFinite(w) == len(w)
	var ebuf, ww []float64 // cssARIMA's buffers, when it is called
	if !complete || !cssInRegisters(ord, len(w)) {
		ebuf = make([]float64, len(w))
		ww = make([]float64, len(w))
	}
	obj := func(x []float64) float64 {
		mu := f.params(x)
		if complete {
			return cssComplete(w, f.c.phi, f.c.theta, mu, ebuf)
		}
		copy(ww, w)
		sse, _ := cssARIMA(ww, f.c.phi, f.c.theta, mu, ebuf)
		return sse
	}
	x := f.x0
	if f.k > 0 {
		x, _ = minimize4(obj, f.css4(w, complete), x, f.evals(), stall)
	}
	return f.finish(w, x)
}

// css4 is obj of fitARIMA four points at a time (minimize4) for the orders
// auto's ARIMA candidate fits by CSS, on a complete w, where the CPU runs
// the css4 kernels; nil otherwise.
func (f *arimaFit) css4(w []float64, complete bool) func(xs *[4][]float64, out *[4]float64) {
	o := f.c.ord
	var kernel func(w *float64, n int, p *[16]float64, out *[4]float64)
	switch {
	case !haveCSS4 || !complete:
	case o.p == 1 && o.q == 1 && len(w) > 1:
		kernel = css4ARMA11
	case o.p == 2 && o.q == 1 && len(w) > 2:
		kernel = css4ARMA21
	case o.p == 1 && o.q == 2 && len(w) > 2:
		kernel = css4ARMA12
	}
	if kernel == nil {
		return nil
	}
	return func(xs *[4][]float64, out *[4]float64) {
		var p [16]float64
		for i, x := range xs {
			p[i] = f.params(x)
			p[4+i] = f.c.phi[0]
			p[12+i] = f.c.theta[0]
			switch {
			case o.p == 2:
				p[8+i] = f.c.phi[1]
			case o.q == 2:
				p[8+i] = f.c.theta[1]
			}
		}
		kernel(&w[0], len(w), &p, out)
	}
}

// arimaFit is one order's CSS fit: its start, its decoding of the
// optimiser's vector, and the fitted model.
type arimaFit struct {
	c     *arimaCore
	k     int // estimated coefficients
	scale float64
	x0    []float64
}

func newARIMAFit(w []float64, ord arimaOrder, scale float64) *arimaFit {
	f := &arimaFit{c: &arimaCore{ord: ord, phi: make([]float64, ord.p), theta: make([]float64, ord.q)}, scale: scale}
	f.k = ord.p + ord.q
	if ord.constant {
		f.k++
	}
	m := num.MeanFinite(w)
	if math.IsNaN(m) {
		m = 0
	}
	f.x0 = make([]float64, f.k)
	if ord.constant {
		f.x0[f.k-1] = m / scale
	}
	return f
}

// evals is the optimiser's evaluation budget.
func (f *arimaFit) evals() int { return 30*f.k + 40 }

// params sets the model's coefficients from the optimiser's vector x and
// returns its mean.
func (f *arimaFit) params(x []float64) float64 {
	return decodeARIMA(f.c.ord, x, f.c.phi, f.c.theta) * f.scale
}

// finish sets the model to the optimiser's result x and its fit on w.
func (f *arimaFit) finish(w, x []float64) *arimaCore {
	c := f.c
	c.mu = f.params(x)
	c.sse, c.nobs = cssSum(w, c.phi, c.theta, c.mu)
	c.ic = aicc(c.sse, c.nobs, f.k)
	return c
}

// cssSum is cssARIMA's sum of squares and count on a copy of w; on a
// complete w, for the orders whose sums need no buffer (cssInRegisters,
// and pure AR: cssAR), without copying w or allocating the errors.
func cssSum(w []float64, phi, theta []float64, mu float64) (float64, int) {
	if num.CountFinite(w) == len(w) {
		o := arimaOrder{p: len(phi), q: len(theta)}
		switch {
		case o.q == 0:
			return cssAR(w, phi, mu), max(0, len(w)-o.p)
		case cssInRegisters(o, len(w)):
			return cssComplete(w, phi, theta, mu, nil), len(w) - o.p
		}
	}
	return cssARIMA(append([]float64(nil), w...), phi, theta, mu, make([]float64, len(w)))
}

// cssInRegisters says whether cssComplete sums order o on n points in its
// own loops, without the errors buffer.
func cssInRegisters(o arimaOrder, n int) bool {
	return (o.p == 1 && o.q == 1 && n > 1) || (o.p == 2 && o.q == 1 && n > 2) || (o.p == 1 && o.q == 2 && n > 2)
}

// cssAR is cssARIMA's sum of squares for a pure AR on a complete w: its
// operations in its order, without the errors it keeps for MA terms.
func cssAR(w []float64, phi []float64, mu float64) float64 {
	sse := 0.0
	for t := len(phi); t < len(w); t++ {
		f := mu
		for i, a := range phi {
			f += float64(a * (w[t-1-i] - mu))
		}
		e := w[t] - f
		sse += float64(e * e)
	}
	return sse
}

// fitMixed fits ARMA(1,d,1), (2,d,1) and (1,d,2) (in that order, with the
// same constant) to the differenced series w and returns what fitARIMA
// returns for each. On a series without missing values the three
// optimisers run in lock step, each in a coroutine that hands out the
// point it needs evaluated, and one loop (cssTriple) computes the three
// sums: the recursions are latency-bound, so three side by side cost
// little more than one. Every optimiser sees the values it would see
// alone, so the fits are the same to the bit (TestFitMixedMatchesAlone).
func fitMixed(w []float64, ords []arimaOrder, scale float64, stall int) []*arimaCore {
	out := make([]*arimaCore, len(ords))
	if !mixedTriple(ords) || len(w) < 3 || num.CountFinite(w) != len(w) {
		for i, o := range ords {
			out[i] = fitARIMA(w, o, scale, stall)
		}
		return out
	}
	var (
		fits    [3]*arimaFit
		vals    [3]float64
		res     [3][]float64
		next    [3]func() ([]float64, bool)
		pending [3][]float64
		active  [3]bool
		mu      [3]float64
	)
	for i, o := range ords {
		fits[i] = newARIMAFit(w, o, scale)
		seq := func(yield func([]float64) bool) {
			obj := func(x []float64) float64 {
				yield(x) // the loop below evaluates x and sets vals[i]
				return vals[i]
			}
			res[i], _ = minimize(obj, fits[i].x0, fits[i].evals(), stall)
		}
		var stop func()
		next[i], stop = iter.Pull(seq)
		defer stop()
	}
	for i := range next {
		pending[i], active[i] = next[i]()
	}
	ebuf := make([]float64, len(w))
	for active[0] || active[1] || active[2] {
		for i, f := range fits {
			if active[i] {
				mu[i] = f.params(pending[i])
			}
		}
		if n := b2i(active[0]) + b2i(active[1]) + b2i(active[2]); n >= 2 {
			// With two left, the finished one's sum (at its last point)
			// rides along and is dropped: one loop instead of two.
			va, vb, vc := cssTriple(w, fits[0].c, fits[1].c, fits[2].c, mu[0], mu[1], mu[2])
			for i, v := range [3]float64{va, vb, vc} {
				if active[i] {
					vals[i] = v
				}
			}
		} else {
			for i, f := range fits {
				if active[i] {
					vals[i] = cssComplete(w, f.c.phi, f.c.theta, mu[i], ebuf)
				}
			}
		}
		for i := range next {
			if active[i] {
				pending[i], active[i] = next[i]()
			}
		}
	}
	for i, f := range fits {
		out[i] = f.finish(w, res[i])
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mixedTriple says whether ords are ARMA(1,d,1), (2,d,1) and (1,d,2) with
// one constant setting: the orders cssTriple runs.
func mixedTriple(ords []arimaOrder) bool {
	return len(ords) == 3 &&
		ords[0].p == 1 && ords[0].q == 1 && ords[1].p == 2 && ords[1].q == 1 && ords[2].p == 1 && ords[2].q == 2 &&
		ords[0].constant == ords[1].constant && ords[1].constant == ords[2].constant
}

// cssTriple is cssComplete of ARMA(1,1) a, (2,1) b and (1,2) c (means ma,
// mb, mc) on w (at least 3 points, none missing) in one loop: each sum
// takes cssComplete's operations in its order.
func cssTriple(w []float64, a, b, c *arimaCore, ma, mb, mc float64) (sa, sb, sc float64) {
	a0, at0 := a.phi[0], a.theta[0]
	b0, b1, bt0 := b.phi[0], b.phi[1], b.theta[0]
	c0, ct0, ct1 := c.phi[0], c.theta[0], c.theta[1]
	var ea1, eb1, ec1, ec2, e0 float64
	// t = 1: a and c (b starts at t = 2; c has no error two steps back).
	{
		f := ma
		f += float64(a0 * (w[0] - ma))
		f += float64(at0 * ea1)
		e := w[1] - f
		sa += float64(e * e)
		ea1 = e
	}
	{
		f := mc
		f += float64(c0 * (w[0] - mc))
		f += float64(ct0 * e0)
		e := w[1] - f
		sc += float64(e * e)
		ec1 = e
	}
	for t := 2; t < len(w); t++ {
		x1, x2, x := w[t-1], w[t-2], w[t]
		fa := ma
		fa += float64(a0 * (x1 - ma))
		fa += float64(at0 * ea1)
		eA := x - fa
		sa += float64(eA * eA)
		ea1 = eA

		fb := mb
		fb += float64(b0 * (x1 - mb))
		fb += float64(b1 * (x2 - mb))
		fb += float64(bt0 * eb1)
		eB := x - fb
		sb += float64(eB * eB)
		eb1 = eB

		fc := mc
		fc += float64(c0 * (x1 - mc))
		fc += float64(ct0 * ec1)
		fc += float64(ct1 * ec2)
		eC := x - fc
		sc += float64(eC * eC)
		ec1, ec2 = eC, ec1
	}
	return sa, sb, sc
}

// arimaSearchPoints bounds the recent history the order search runs on;
// the chosen order is then re-estimated on up to maxFitPoints.
const arimaSearchPoints = 1008

// autoARIMA chooses d by KPSS and (p, q, constant) stepwise by AICc.
func autoARIMA(y []float64) (*arimaCore, error) {
	win := y
	if len(win) > arimaSearchPoints {
		win = win[len(win)-arimaSearchPoints:]
	}
	full := y
	if len(full) > maxFitPoints {
		full = full[len(full)-maxFitPoints:]
	}
	if num.CountFinite(win) < 10 {
		// Too short to estimate anything: a random walk.
		return newRandomWalk(), nil
	}
	d := ndiffs(num.FillGaps(full))
	w := append([]float64(nil), win...)
	for i := 0; i < d; i++ {
		w = diff(w)
	}
	for i := range w {
		if !num.Finite(w[i]) {
			w[i] = math.NaN()
		}
	}
	if num.CountFinite(w) < 10 {
		// Too few points whose neighbours were observed to difference
		// (a sparse series: most points missing): a random walk.
		return newRandomWalk(), nil
	}
	_, sc := num.MedianMAD(w)
	if sc <= 0 {
		sc = 1
	}
	seen := map[arimaOrder]*arimaCore{}
	try := func(o arimaOrder) *arimaCore {
		if o.p < 0 || o.q < 0 || o.p > maxARIMAOrder || o.q > maxARIMAOrder || (o.constant && d > 1) {
			return nil
		}
		if c, ok := seen[o]; ok {
			return c
		}
		c := fitARIMA(w, o, sc, nmConvIters)
		seen[o] = c
		return c
	}
	cst := d <= 1
	var best *arimaCore
	for _, o := range []arimaOrder{{2, d, 2, cst}, {0, d, 0, cst}, {1, d, 0, cst}, {0, d, 1, cst}} {
		if c := try(o); c != nil && (best == nil || c.ic < best.ic) {
			best = c
		}
	}
	for improved := true; improved; {
		improved = false
		b := best.ord
		for _, o := range []arimaOrder{
			{b.p - 1, d, b.q, b.constant}, {b.p + 1, d, b.q, b.constant},
			{b.p, d, b.q - 1, b.constant}, {b.p, d, b.q + 1, b.constant},
			{b.p - 1, d, b.q - 1, b.constant}, {b.p + 1, d, b.q + 1, b.constant},
			{b.p - 1, d, b.q + 1, b.constant}, {b.p + 1, d, b.q - 1, b.constant},
			{b.p, d, b.q, !b.constant},
		} {
			if c := try(o); c != nil && c.ic < best.ic-1e-9 {
				best, improved = c, true
			}
		}
	}
	return best, nil
}

// newRandomWalk is ARIMA(0,1,0), ready to observe: the model for a history
// too short or too sparse to estimate anything on.
func newRandomWalk() *arimaCore {
	c := &arimaCore{ord: arimaOrder{d: 1}}
	c.reset()
	return c
}

// refitARIMA re-estimates a known order on y (stall: fitARIMA); nil when
// y has too few points to difference that often (a sparse series).
func refitARIMA(y []float64, o arimaOrder, stall int) *arimaCore {
	win := y
	if len(win) > maxFitPoints {
		win = win[len(win)-maxFitPoints:]
	}
	w := append([]float64(nil), win...)
	for i := 0; i < o.d; i++ {
		w = diff(w)
	}
	if num.CountFinite(w) < 10 {
		return nil
	}
	_, sc := num.MedianMAD(w)
	if sc <= 0 {
		sc = 1
	}
	return fitARIMA(w, o, sc, stall)
}

// arimaSelect is the core of the "arima" model: it searches the order at
// fit time.
type arimaSelect struct{ *arimaCore }

// fit searches the order on the first call and re-estimates that order on
// later calls (see etsSelect.fit).
func (c *arimaSelect) fit(y []float64) error {
	if c.arimaCore != nil && num.CountFinite(y) >= 10 {
		if r := refitARIMA(y, c.ord, nmConvIters); r != nil {
			c.arimaCore = r
			c.reset()
			return nil
		}
		// The order cannot be estimated on this history: search again.
	}
	b, err := autoARIMA(y)
	if err != nil {
		return err
	}
	c.arimaCore = b
	c.reset()
	return nil
}

func (c *arimaCore) fit(y []float64) error { return nil }

func (c *arimaCore) reset() {
	c.w = make([]float64, c.ord.p)
	c.e = make([]float64, c.ord.q)
	c.levels = make([]float64, c.ord.d+1)
	c.nlev = 0
}

// predictW is the one-step forecast of the next differenced value.
func (c *arimaCore) predictW() float64 {
	f := c.mu
	for i, p := range c.phi {
		f += float64(p * c.w[i])
	}
	for j, t := range c.theta {
		f += float64(t * c.e[j])
	}
	return f
}

func (c *arimaCore) observe(v float64) {
	d := c.ord.d
	if c.nlev < d {
		// Not enough levels to difference yet: just record.
		if !num.Finite(v) {
			if c.nlev == 0 {
				return
			}
			v = c.levels[0]
		}
		copy(c.levels[1:], c.levels[:d])
		c.levels[0] = v
		c.nlev++
		return
	}
	fw := c.predictW()
	var w, e float64
	if num.Finite(v) {
		w = v
		// Difference d times against the stored levels.
		switch d {
		case 1:
			w = v - c.levels[0]
		case 2:
			w = (v - c.levels[0]) - (c.levels[0] - c.levels[1])
		}
		e = w - fw
	} else {
		w, e = fw, 0
		v = c.integrate(fw)
	}
	if len(c.w) > 0 {
		copy(c.w[1:], c.w[:len(c.w)-1])
		c.w[0] = w - c.mu
	}
	if len(c.e) > 0 {
		copy(c.e[1:], c.e[:len(c.e)-1])
		c.e[0] = e
	}
	if d > 0 {
		copy(c.levels[1:], c.levels[:d])
		c.levels[0] = v
	}
	c.nlev++
}

// integrate turns a differenced value into a level given the stored levels.
func (c *arimaCore) integrate(w float64) float64 {
	switch c.ord.d {
	case 1:
		return c.levels[0] + w
	case 2:
		return c.levels[0] + (c.levels[0] - c.levels[1]) + w
	}
	return w
}

func (c *arimaCore) forecast(out []float64) {
	p, q := len(c.phi), len(c.theta)
	w := make([]float64, p)
	copy(w, c.w)
	e := make([]float64, q)
	copy(e, c.e)
	l0, l1 := 0.0, 0.0
	if c.ord.d >= 1 && c.nlev > 0 {
		l0 = c.levels[0]
	}
	if c.ord.d >= 2 && c.nlev > 1 {
		l1 = c.levels[1]
	}
	for h := range out {
		f := c.mu
		for i := 0; i < p; i++ {
			f += float64(c.phi[i] * w[i])
		}
		for j := 0; j < q; j++ {
			f += float64(c.theta[j] * e[j])
		}
		if p > 0 {
			copy(w[1:], w[:p-1])
			w[0] = f - c.mu
		}
		if q > 0 {
			copy(e[1:], e[:q-1])
			e[0] = 0
		}
		switch c.ord.d {
		case 0:
			out[h] = f
		case 1:
			l0 += f
			out[h] = l0
		case 2:
			nl := l0 + (l0 - l1) + f
			l1, l0 = l0, nl
			out[h] = nl
		}
	}
}

func (c *arimaCore) label() string { return c.ord.String() }
func (c *arimaCore) bytes() int    { return 96 + 16*(c.ord.p+c.ord.q) + 8*(c.ord.d+1) }

func newARIMAModel(o Options) *model {
	return &model{name: "arima", opts: o, newCore: func(y []float64, o Options) (core, string, error) {
		periods, why := seasonalPeriods(y, o)
		if len(periods) > 0 {
			return newMSTL(periods, &arimaSelect{}), "stepwise ARIMA (AICc, KPSS differencing) on the seasonally adjusted series; " + why, nil
		}
		return &arimaSelect{}, "stepwise ARIMA (AICc, KPSS differencing); " + why, nil
	}}
}

// fitAROLS fits ARIMA(p,d,0) to the differenced series w by ordinary least
// squares, which for a pure AR model is exactly conditional sum of squares.
func fitAROLS(w []float64, p int, constant bool, d int) *arimaCore {
	c := &arimaCore{ord: arimaOrder{p: p, d: d, constant: constant}, phi: make([]float64, p)}
	k := p
	if constant {
		k++
	}
	// Normal equations X'X b = X'y over rows with all lags finite.
	xtx := make([]float64, k*k)
	xty := make([]float64, k)
	row := make([]float64, k)
	n := 0
	for t := p; t < len(w); t++ {
		if !num.Finite(w[t]) {
			continue
		}
		okRow := true
		for i := 0; i < p; i++ {
			if !num.Finite(w[t-1-i]) {
				okRow = false
				break
			}
			row[i] = w[t-1-i]
		}
		if !okRow {
			continue
		}
		if constant {
			row[p] = 1
		}
		// X'X is symmetric, and row[i]·row[j] is row[j]·row[i] to the
		// bit: the upper triangle is summed and mirrored below.
		for i := 0; i < k; i++ {
			xty[i] += float64(row[i] * w[t])
			for j := i; j < k; j++ {
				xtx[i*k+j] += float64(row[i] * row[j])
			}
		}
		n++
	}
	for i := 0; i < k; i++ {
		for j := 0; j < i; j++ {
			xtx[i*k+j] = xtx[j*k+i]
		}
	}
	var b []float64
	if k > 0 {
		// Small ridge for numerical safety on flat series.
		for i := 0; i < k; i++ {
			xtx[i*k+i] += float64(1e-9 * (1 + xtx[i*k+i]))
		}
		b = solveSPD(xtx, xty, k)
	}
	copy(c.phi, b[:p])
	intercept := 0.0
	if constant {
		intercept = b[p]
	}
	// Intercept c = mu·(1 − Σφ).
	s := 1.0
	for _, v := range c.phi {
		s -= v
	}
	if math.Abs(s) > 1e-6 {
		c.mu = intercept / s
	}
	if !stationaryAR(c.phi) {
		// Fall back to the random-walk-like model of this differencing.
		for i := range c.phi {
			c.phi[i] = 0
		}
		c.mu = 0
		if constant {
			c.mu = num.MeanFinite(w)
		}
	}
	c.sse, c.nobs = cssSum(w, c.phi, nil, c.mu)
	c.ic = aicc(c.sse, c.nobs, k)
	c.reset()
	return c
}

// solveSPD solves A x = b for a small symmetric positive definite A by
// Cholesky; it returns zeros when A is not positive definite.
func solveSPD(a, b []float64, k int) []float64 {
	l := make([]float64, k*k)
	for i := 0; i < k; i++ {
		for j := 0; j <= i; j++ {
			s := a[i*k+j]
			for m := 0; m < j; m++ {
				s -= float64(l[i*k+m] * l[j*k+m])
			}
			if i == j {
				if s <= 0 {
					return make([]float64, k)
				}
				l[i*k+i] = math.Sqrt(s)
			} else {
				l[i*k+j] = s / l[j*k+j]
			}
		}
	}
	z := make([]float64, k)
	for i := 0; i < k; i++ {
		s := b[i]
		for m := 0; m < i; m++ {
			s -= float64(l[i*k+m] * z[m])
		}
		z[i] = s / l[i*k+i]
	}
	x := make([]float64, k)
	for i := k - 1; i >= 0; i-- {
		s := z[i]
		for m := i + 1; m < k; m++ {
			s -= float64(l[m*k+i] * x[m])
		}
		x[i] = s / l[i*k+i]
	}
	return x
}

// stationaryAR checks the AR polynomial by running the inverse
// Durbin-Levinson recursion: all partial autocorrelations must lie in
// (−1, 1).
func stationaryAR(phi []float64) bool {
	a := append([]float64(nil), phi...)
	for k := len(a) - 1; k >= 0; k-- {
		r := a[k]
		if math.Abs(r) >= 1 {
			return false
		}
		if k == 0 {
			break
		}
		den := 1 - r*r
		b := make([]float64, k)
		for j := 0; j < k; j++ {
			b[j] = (a[j] + float64(r*a[k-1-j])) / den
		}
		a = b
	}
	return true
}

// maxAROrder bounds p in the least-squares AR search used by auto.
const maxAROrder = 4

// arCore is the ARIMA auto can afford to backtest: d by KPSS, then
// ARIMA(p,d,0) for p ≤ maxAROrder by least squares and, when mixed is set
// and the best AR fit's residuals fail the Ljung–Box test
// (residualsCorrelated), ARIMA(1,d,1), (2,d,1) and (1,d,2) by conditional
// sum of squares on the last arimaSearchPoints points (fitMixed), the
// order with the lowest AICc winning. Like arimaSelect it searches on its
// first fit and re-estimates that order on later ones.
type arCore struct {
	*arimaCore
	// mixed enables the ARMA orders; auto enables them for horizons under
	// six hours, where short-memory dynamics matter. Over longer horizons
	// they mostly extrapolate noise, and the AR search is enough.
	mixed bool
}

func (c *arCore) fit(y []float64) error {
	win := y
	if len(win) > maxFitPoints {
		win = win[len(win)-maxFitPoints:]
	}
	walk := func() error {
		c.arimaCore = newRandomWalk()
		return nil
	}
	if num.CountFinite(win) < 10 {
		return walk()
	}
	if c.arimaCore != nil {
		o := c.ord
		if w := differenced(win, o.d); num.CountFinite(w) < 10 {
			// Too few points whose neighbours were observed (a sparse
			// series) to re-estimate the order.
			return walk()
		} else if o.q == 0 {
			c.arimaCore = fitAROLS(w, o.p, o.constant, o.d)
		} else {
			c.arimaCore = refitARIMA(y, o, nmQuickIters)
		}
		c.reset()
		return nil
	}
	d := ndiffs(num.FillGaps(win))
	w := differenced(win, d)
	if num.CountFinite(w) < 10 {
		return walk()
	}
	var best *arimaCore
	for p := 0; p <= maxAROrder; p++ {
		for _, cst := range []bool{false, true} {
			if cst && d > 1 {
				continue
			}
			m := fitAROLS(w, p, cst, d)
			if best == nil || m.ic < best.ic {
				best = m
			}
		}
	}
	// A few mixed orders by CSS on the recent part; their AICc is put on
	// the scale of the full-window AR fits by the residual variance ratio.
	sw := w
	if len(sw) > arimaSearchPoints {
		sw = sw[len(sw)-arimaSearchPoints:]
	}
	_, sc := num.MedianMAD(sw)
	if sc <= 0 {
		sc = 1
	}
	var mixed []arimaOrder
	if c.mixed && residualsCorrelated(w, best) {
		mixed = []arimaOrder{{1, d, 1, best.ord.constant}, {2, d, 1, best.ord.constant}, {1, d, 2, best.ord.constant}}
	}
	for i, m := range fitMixed(sw, mixed, sc, nmQuickIters) {
		o := mixed[i]
		if m.nobs == 0 || best.nobs == 0 {
			continue
		}
		k := o.p + o.q
		if o.constant {
			k++
		}
		ic := aicc(m.sse/float64(m.nobs)*float64(best.nobs), best.nobs, k)
		if ic < best.ic {
			m.ic = ic
			best = m
		}
	}
	if best.ord.q > 0 {
		if r := refitARIMA(y, best.ord, nmQuickIters); r != nil {
			best = r
		}
	}
	c.arimaCore = best
	c.reset()
	return nil
}

// differenced returns y differenced d times.
func differenced(y []float64, d int) []float64 {
	w := append([]float64(nil), y...)
	for i := 0; i < d; i++ {
		w = diff(w)
	}
	return w
}

// ljungBoxLags is the number of residual autocorrelations the Ljung–Box
// test of an AR fit looks at: the usual choice for non-seasonal data, at
// most a fifth of the residuals.
const ljungBoxLags = 10

// residualsCorrelated reports whether the one-step residuals of the AR fit
// c on the differenced series w fail the Ljung–Box portmanteau test at 5%
// (Q over ljungBoxLags lags against χ² with ljungBoxLags − p degrees of
// freedom): structure that an AR model of that order leaves and a mixed
// order may capture. Residuals that pass are white noise as far as the
// test can tell, and arCore does not search the mixed orders for them.
func residualsCorrelated(w []float64, c *arimaCore) bool {
	p := c.ord.p
	if len(w) <= p {
		return true
	}
	e := make([]float64, len(w))
	cssARIMA(append([]float64(nil), w...), c.phi, nil, c.mu, e)
	r := e[p:]
	h := min(ljungBoxLags, len(r)/5)
	df := h - p
	if df < 1 {
		return true
	}
	m := num.Mean(r)
	var c0 float64
	for _, v := range r {
		c0 += float64((v - m) * (v - m))
	}
	if c0 <= 0 {
		return false
	}
	n := float64(len(r))
	q := 0.0
	for k := 1; k <= h; k++ {
		var ck float64
		for t := k; t < len(r); t++ {
			ck += float64((r[t] - m) * (r[t-k] - m))
		}
		rk := ck / c0
		q += rk * rk / (n - float64(k))
	}
	q *= n * (n + 2)
	return q > distuv.ChiSquared{K: float64(df)}.Quantile(0.95)
}
