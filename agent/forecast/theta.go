package forecast

import (
	"math"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// thetaCore is the standard theta method (Assimakopoulos & Nikolopoulos),
// in the form shown by Hyndman & Billah to be simple exponential smoothing
// with drift: the theta=0 line (the least-squares trend) and the theta=2 line
// combined with equal weights. The forecast is
//
//	ŷ(n+h) = ℓ(n) + b/2 · ((h−1) + (1 − (1−α)^n)/α)
//
// where ℓ is the SES level, α its smoothing parameter (chosen by least
// squares on one-step errors) and b the least-squares slope of the history.
// Seasonal adjustment is done outside, by wrapping it in a decomposition.
type thetaCore struct {
	alpha, slope float64
	l0           float64
	l            float64
	n            int
	started      bool
}

func (c *thetaCore) fit(y []float64) error {
	w := y
	if len(w) > maxFitPoints {
		w = w[len(w)-maxFitPoints:]
	}
	_, c.slope = num.LinearFit(w)
	first := math.NaN()
	for _, v := range w {
		if num.Finite(v) {
			first = v
			break
		}
	}
	if math.IsNaN(first) {
		return ErrTooShort
	}
	sse := func(a float64) float64 {
		l, s := first, 0.0
		for _, v := range w {
			if !num.Finite(v) {
				continue
			}
			e := v - l
			s += float64(e * e)
			l += float64(a * e)
		}
		return s
	}
	c.alpha = goldenMin(sse, 1e-3, 0.999, 30)
	c.l0 = math.NaN()
	for _, v := range y {
		if num.Finite(v) {
			c.l0 = v
			break
		}
	}
	c.reset()
	return nil
}

// goldenMin minimises a unimodal f on [a, b] by golden-section search.
func goldenMin(f func(float64) float64, a, b float64, iters int) float64 {
	g := (math.Sqrt(5) - 1) / 2
	x1, x2 := b-float64(g*(b-a)), a+float64(g*(b-a))
	f1, f2 := f(x1), f(x2)
	for i := 0; i < iters; i++ {
		if f1 < f2 {
			b, x2, f2 = x2, x1, f1
			x1 = b - float64(g*(b-a))
			f1 = f(x1)
		} else {
			a, x1, f1 = x1, x2, f2
			x2 = a + float64(g*(b-a))
			f2 = f(x2)
		}
	}
	if f1 < f2 {
		return x1
	}
	return x2
}

func (c *thetaCore) reset() { c.l, c.n, c.started = c.l0, 0, false }
func (c *thetaCore) observe(v float64) {
	c.n++
	if !num.Finite(v) {
		return
	}
	if !c.started {
		c.l, c.started = v, true
		return
	}
	c.l += float64(c.alpha * (v - c.l))
}
func (c *thetaCore) forecast(out []float64) {
	l := c.l
	if math.IsNaN(l) {
		l = 0
	}
	a := c.alpha
	k := (1 - math.Pow(1-a, float64(c.n))) / a
	for h := range out {
		out[h] = l + float64(c.slope/2*(float64(h)+k))
	}
}
func (c *thetaCore) label() string { return "theta" }
func (c *thetaCore) bytes() int    { return 48 }

func newThetaModel(o Options) *model {
	return &model{name: "theta", opts: o, newCore: func(y []float64, o Options) (core, string, error) {
		periods, why := seasonalPeriods(y, o)
		if len(periods) > 0 {
			return newMSTL(periods, &thetaCore{}), "theta method on the seasonally adjusted series; " + why, nil
		}
		return &thetaCore{}, "theta method; " + why, nil
	}}
}
