package forecast

import (
	"fmt"
	"math"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// etsSpec is the shape of an exponential smoothing model with additive
// errors: ETS(A, trend, season).
type etsSpec struct {
	trend  bool
	damped bool
	m      int // seasonal period; 0 or 1 means no seasonality
}

func (s etsSpec) seasonal() bool { return s.m > 1 }

func (s etsSpec) String() string {
	t := "N"
	if s.trend {
		t = "A"
		if s.damped {
			t = "Ad"
		}
	}
	if s.seasonal() {
		return fmt.Sprintf("ets(A,%s,A%d)", t, s.m)
	}
	return fmt.Sprintf("ets(A,%s,N)", t)
}

// nParams counts smoothing parameters plus initial states.
func (s etsSpec) nParams() int {
	k := 2 // alpha, l0
	if s.trend {
		k += 2
		if s.damped {
			k++
		}
	}
	if s.seasonal() {
		k += s.m // gamma and m-1 free initial seasonal states
	}
	return k
}

// etsParams are the smoothing parameters.
type etsParams struct{ alpha, beta, phi, gamma float64 }

// etsState is the level, trend and seasonal states. s is a ring: s[n%m] is
// the seasonal state of the next observation.
type etsState struct {
	l, b float64
	s    []float64
	n    int
}

func (st *etsState) copyFrom(o etsState) {
	st.l, st.b, st.n = o.l, o.b, o.n
	st.s = append(st.s[:0], o.s...)
}

// etsCore is an ETS(A,{N,A,Ad},{N,A}) model. Parameters are estimated by
// maximum likelihood, which for additive Gaussian errors is minimising the
// sum of squared one-step errors (concentrated likelihood n·log(SSE/n)),
// with gonum's Nelder-Mead over logit-transformed parameters. Initial states
// come from the first observations (level: their mean; trend: the slope
// between the first two blocks; season: mean deviations over the first two
// cycles) and are counted as parameters in the AICc.
type etsCore struct {
	spec etsSpec
	p    etsParams
	init etsState
	st   etsState
	sse  float64
	nobs int
	ic   float64 // AICc of the fit
}

func newETS(spec etsSpec) *etsCore { return &etsCore{spec: spec} }

// maxFitPoints bounds the history used to estimate parameters (one week of
// 5-minute steps); the state still runs over the whole history.
const maxFitPoints = 2016

func (c *etsCore) fit(y []float64) error {
	w := y
	if len(w) > maxFitPoints {
		w = w[len(w)-maxFitPoints:]
	}
	init, ok := etsInit(w, c.spec)
	if !ok {
		return fmt.Errorf("%s: too few points to initialise: %w", c.spec, ErrTooShort)
	}
	x0 := c.encode(etsParams{alpha: 0.3, beta: 0.05, phi: 0.95, gamma: 0.05})
	var st etsState
	// Whether w is complete is checked once, not at every evaluation.
	complete := !c.spec.seasonal() && num.CountFinite(w) == len(w)
	obj := func(x []float64) float64 {
		if complete {
			sse, _ := etsRunComplete(w, c.spec, c.decode(x), init)
			return sse
		}
		sse, _ := etsRun(w, c.spec, c.decode(x), init, &st)
		return sse
	}
	x, _ := minimize4(obj, c.ets4(w, init, complete), x0, 60*len(x0)+40, nmQuickIters)
	c.p = c.decode(x)
	c.sse, c.nobs = etsRun(w, c.spec, c.p, init, &st)
	c.ic = aicc(c.sse, c.nobs, c.spec.nParams())
	full, _ := etsInit(y, c.spec)
	c.init = full
	c.reset()
	return nil
}

// ets4 is fit's objective four points at a time (minimize4) on a complete
// w for the non-seasonal shapes, where the CPU runs the ets4 kernels; nil
// otherwise.
func (c *etsCore) ets4(w []float64, init etsState, complete bool) func(xs *[4][]float64, out *[4]float64) {
	if !haveCSS4 || !complete || len(w) == 0 || c.spec.seasonal() {
		return nil
	}
	if c.spec.trend {
		return func(xs *[4][]float64, out *[4]float64) {
			var p [12]float64
			for i, x := range xs {
				q := c.decode(x)
				p[i], p[4+i], p[8+i] = q.alpha, q.beta, q.phi
			}
			ets4Trend(&w[0], len(w), init.l, init.b, &p, out)
		}
	}
	if init.b != 0 {
		return nil // etsRunComplete's general loop (phi·b is not zero)
	}
	return func(xs *[4][]float64, out *[4]float64) {
		var alpha [4]float64
		for i, x := range xs {
			alpha[i] = c.decode(x).alpha
		}
		ets4Simple(&w[0], len(w), init.l, &alpha, out)
	}
}

func (c *etsCore) encode(p etsParams) []float64 {
	x := []float64{logit(p.alpha)}
	if c.spec.trend {
		x = append(x, logit(p.beta/p.alpha))
		if c.spec.damped {
			x = append(x, logit((p.phi-0.8)/0.18))
		}
	}
	if c.spec.seasonal() {
		x = append(x, logit(p.gamma/(1-p.alpha)))
	}
	return x
}

func (c *etsCore) decode(x []float64) etsParams {
	p := etsParams{phi: 1}
	p.alpha = 1e-4 + float64((1-2e-4)*sigmoid(x[0]))
	i := 1
	if c.spec.trend {
		p.beta = p.alpha * sigmoid(x[i])
		i++
		if c.spec.damped {
			p.phi = 0.8 + float64(0.18*sigmoid(x[i]))
			i++
		}
	}
	if c.spec.seasonal() {
		p.gamma = (1 - p.alpha) * sigmoid(x[i])
	}
	return p
}

// etsInit derives initial states from the start of y.
func etsInit(y []float64, spec etsSpec) (etsState, bool) {
	st := etsState{}
	if spec.seasonal() {
		m := spec.m
		if len(y) < 2*m {
			return st, false
		}
		c1, c2 := num.MeanFinite(y[:m]), num.MeanFinite(y[m:2*m])
		if math.IsNaN(c1) || math.IsNaN(c2) {
			return st, false
		}
		st.l = c1
		if spec.trend {
			st.b = (c2 - c1) / float64(m)
		}
		st.s = make([]float64, m)
		for i := 0; i < m; i++ {
			d, k := 0.0, 0
			for _, j := range []int{i, i + m} {
				if num.Finite(y[j]) {
					base := c1
					if j >= m {
						base = c2
					}
					d += y[j] - base
					k++
				}
			}
			if k > 0 {
				st.s[i] = d / float64(k)
			}
		}
		return st, true
	}
	k := 10
	if len(y) < 2*k {
		k = len(y) / 2
	}
	if k < 1 {
		return st, false
	}
	a, b := num.MeanFinite(y[:k]), num.MeanFinite(y[k:2*k])
	if math.IsNaN(a) {
		a = num.MeanFinite(y)
	}
	if math.IsNaN(a) {
		return st, false
	}
	st.l = a
	if spec.trend && !math.IsNaN(b) {
		st.b = (b - a) / float64(k)
		st.l = a - st.b*float64(k-1)/2
	}
	return st, true
}

// etsRun filters y from init with p and returns the sum of squared one-step
// errors and how many finite observations it covered. st is scratch space.
func etsRun(y []float64, spec etsSpec, p etsParams, init etsState, st *etsState) (float64, int) {
	if !spec.seasonal() && num.CountFinite(y) == len(y) {
		return etsRunComplete(y, spec, p, init)
	}
	st.copyFrom(init)
	sse, k := 0.0, 0
	for _, v := range y {
		e := etsStep(spec, p, st, v)
		if !math.IsNaN(e) {
			sse += float64(e * e)
			k++
		}
	}
	return sse, k
}

// etsRunComplete is etsRun for a non-seasonal shape on a y without
// missing values: etsStep's operations in the same order, with the level
// and trend in registers, so the same sum to the bit
// (TestETSRunCompleteMatchesSteps).
func etsRunComplete(y []float64, spec etsSpec, p etsParams, init etsState) (float64, int) {
	l, b := init.l, init.b
	s := 0.0 // etsStep's seasonal term, absent here
	sse, k := 0.0, 0
	if !spec.trend && p.phi*b == 0 {
		// Without a trend etsStep adds phi·b and s, both zero, to the
		// level twice per step. Adding a zero changes at most the sign of
		// a zero, and a zero's sign never reaches a square or a non-zero
		// sum: leaving them out keeps the sum to the bit and shortens the
		// chain from one level to the next by two additions.
		for _, v := range y {
			e := v - l
			ee := e
			if math.IsNaN(ee) {
				ee = 0
			}
			l = l + float64(p.alpha*ee)
			if !math.IsNaN(e) {
				sse += float64(e * e)
				k++
			}
		}
		return sse, k
	}
	for _, v := range y {
		phib := float64(p.phi * b)
		f := l + phib + s
		e := v - f
		ee := e
		if math.IsNaN(ee) {
			ee = 0
		}
		l = l + phib + float64(p.alpha*ee)
		if spec.trend {
			b = phib + float64(p.beta*ee)
		}
		if !math.IsNaN(e) {
			sse += float64(e * e)
			k++
		}
	}
	return sse, k
}

// etsStep advances st by one observation and returns the one-step error
// (NaN when v is missing; the state then follows its own forecast).
func etsStep(spec etsSpec, p etsParams, st *etsState, v float64) float64 {
	var s float64
	i := 0
	if spec.seasonal() {
		i = st.n % spec.m
		s = st.s[i]
	}
	phib := p.phi * st.b
	f := st.l + phib + s
	e := v - f
	if !num.Finite(v) {
		e = math.NaN()
	}
	ee := e
	if math.IsNaN(ee) {
		ee = 0
	}
	st.l = st.l + phib + float64(p.alpha*ee)
	if spec.trend {
		st.b = phib + float64(p.beta*ee)
	}
	if spec.seasonal() {
		st.s[i] = s + float64(p.gamma*ee)
	}
	st.n++
	return e
}

func (c *etsCore) reset()            { c.st.copyFrom(c.init) }
func (c *etsCore) observe(v float64) { etsStep(c.spec, c.p, &c.st, v) }
func (c *etsCore) forecast(out []float64) {
	damp, phi := 0.0, 1.0
	for h := range out {
		if c.spec.trend {
			phi = float64(phi * c.p.phi)
			damp += phi
		}
		v := c.st.l + float64(damp*c.st.b)
		if c.spec.seasonal() {
			v += c.st.s[(c.st.n+h)%c.spec.m]
		}
		out[h] = v
	}
}
func (c *etsCore) label() string { return c.spec.String() }
func (c *etsCore) bytes() int    { return 160 + 16*len(c.st.s) }

// maxETSPeriod is the longest season ETS models with seasonal states; longer
// periods (288 five-minute steps a day) go through the decomposition model.
const maxETSPeriod = 48

// fitBestETS fits the candidate shapes and returns the one with the lowest
// AICc.
func fitBestETS(y []float64, specs []etsSpec) (*etsCore, error) {
	var best *etsCore
	var firstErr error
	for _, s := range specs {
		c := newETS(s)
		if err := c.fit(y); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if best == nil || c.ic < best.ic {
			best = c
		}
	}
	if best == nil {
		return nil, firstErr
	}
	return best, nil
}

// etsSelect is the core of the "ets" model: it picks the shape by AICc at
// fit time.
type etsSelect struct {
	*etsCore
	specs []etsSpec
}

// fit selects the shape by AICc on the first call and re-estimates that
// shape on later calls: models select on the history before the backtest
// origins and then refit on the whole history, so the backtest measures
// the shape that is finally used.
func (c *etsSelect) fit(y []float64) error {
	specs := c.specs
	if c.etsCore != nil {
		specs = []etsSpec{c.etsCore.spec}
	}
	b, err := fitBestETS(y, specs)
	if err != nil {
		return err
	}
	c.etsCore = b
	return nil
}

var nonSeasonalETS = []etsSpec{{}, {trend: true}, {trend: true, damped: true}}

func newETSModel(o Options) *model {
	return &model{name: "ets", opts: o, newCore: func(y []float64, o Options) (core, string, error) {
		specs := append([]etsSpec(nil), nonSeasonalETS...)
		periods, why := seasonalPeriods(y, o)
		reason := "exponential smoothing chosen by AICc; " + why
		for _, m := range periods {
			if m <= maxETSPeriod {
				specs = append(specs, etsSpec{m: m}, etsSpec{trend: true, damped: true, m: m})
				break
			}
		}
		return &etsSelect{specs: specs}, reason, nil
	}}
}
