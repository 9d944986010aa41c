package forecast

import (
	"fmt"
	"math"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// naiveCore forecasts the last observed value at every step: the random-walk
// baseline.
type naiveCore struct {
	last float64
}

func (c *naiveCore) fit([]float64) error { return nil }
func (c *naiveCore) reset()              { c.last = math.NaN() }
func (c *naiveCore) observe(v float64) {
	if num.Finite(v) {
		c.last = v
	}
}
func (c *naiveCore) forecast(out []float64) {
	v := c.last
	if math.IsNaN(v) {
		v = 0
	}
	for i := range out {
		out[i] = v
	}
}
func (c *naiveCore) label() string { return "naive" }
func (c *naiveCore) bytes() int    { return 8 }

// snaiveCore forecasts the value one season earlier: ŷ(n+h) = y(n+h-km)
// with the smallest k ≥ 1 that reaches back into the history.
type snaiveCore struct {
	m      int
	buf    []float64 // buf[t%m] holds y(t) for the last m observations
	n      int
	filled bool
	last   float64
}

func newSnaive(m int) *snaiveCore {
	if m < 1 {
		m = 1
	}
	c := &snaiveCore{m: m, buf: make([]float64, m)}
	c.reset()
	return c
}

func (c *snaiveCore) fit([]float64) error { return nil }
func (c *snaiveCore) reset() {
	c.n, c.filled, c.last = 0, false, math.NaN()
	for i := range c.buf {
		c.buf[i] = math.NaN()
	}
}
func (c *snaiveCore) observe(v float64) {
	i := c.n % c.m
	if !num.Finite(v) {
		// Impute: the same phase one season ago, else the last value.
		v = c.buf[i]
		if math.IsNaN(v) {
			v = c.last
		}
	}
	c.buf[i] = v
	if !math.IsNaN(v) {
		c.last = v
	}
	c.n++
	if c.n >= c.m {
		c.filled = true
	}
}
func (c *snaiveCore) forecast(out []float64) {
	for h := range out {
		v := c.buf[(c.n+h)%c.m]
		if math.IsNaN(v) || (!c.filled && (c.n+h)%c.m >= c.n) {
			v = c.last
		}
		if math.IsNaN(v) {
			v = 0
		}
		out[h] = v
	}
}
func (c *snaiveCore) label() string {
	if c.m == 1 {
		return "seasonal-naive(lag 1)"
	}
	return fmt.Sprintf("seasonal-naive(%d)", c.m)
}
func (c *snaiveCore) bytes() int { return 8*c.m + 48 }

func newNaiveModel(o Options) *model {
	return &model{name: "naive", opts: o, newCore: func(y []float64, o Options) (core, string, error) {
		return &naiveCore{}, "baseline: last observed value", nil
	}}
}

func newSnaiveModel(o Options) *model {
	return &model{name: "seasonal-naive", opts: o, newCore: func(y []float64, o Options) (core, string, error) {
		d := o.daily()
		if len(y) >= d && d > 1 {
			return newSnaive(d), fmt.Sprintf("baseline: value one day (%d steps) earlier", d), nil
		}
		return newSnaive(1), fmt.Sprintf("cold start: %d points, less than one day (%d steps); lag 1", len(y), d), nil
	}}
}
