package forecast

import (
	"fmt"
	"math"
	"strings"
)

// mstlCore handles long and multiple seasonal periods (288 and 2016 steps at
// five minutes) the way MSTL does: it decomposes the history into one
// seasonal component per period by iterated robust seasonal extraction,
// forecasts the seasonally adjusted series with a non-seasonal inner model,
// and projects each seasonal component as a seasonal naive of the component
// (its profile). It never gives an ETS hundreds of seasonal states.
//
// Extraction, per period m from the shortest, on the series minus the other
// components: remove a centred moving average of length m (the trend), clip
// the result at 4 robust standard deviations (so spikes and anomalies do not
// leak into the profile), average it per phase with recent cycles weighted
// more (seasonalDecay per cycle), smooth the profile circularly and centre
// it. Two passes over the periods refine each component given the others.
type mstlCore struct {
	periods []int
	prof    [][]float64
	inner   core
	n       int
}

func newMSTL(periods []int, inner core) *mstlCore {
	return &mstlCore{periods: periods, inner: inner}
}

// seasonalDecay weighs each cycle back by this factor in the profile.
const seasonalDecay = 0.9

func (c *mstlCore) fit(y []float64) error {
	x := fillGaps(y)
	c.prof = decompose(x, c.periods)
	z := c.adjust(y)
	if err := c.inner.fit(z); err != nil {
		return err
	}
	c.reset()
	return nil
}

// decompose returns the seasonal profile of each period of x.
func decompose(x []float64, periods []int) [][]float64 {
	n := len(x)
	prof := make([][]float64, len(periods))
	for i, m := range periods {
		prof[i] = make([]float64, m)
	}
	d := make([]float64, n)
	passes := 2
	if len(periods) == 1 {
		passes = 1
	}
	for pass := 0; pass < passes; pass++ {
		for i, m := range periods {
			for t := range x {
				d[t] = x[t]
				for j, p := range prof {
					if j != i {
						d[t] -= p[t%periods[j]]
					}
				}
			}
			r := detrendMA(d, m)
			winsorize(r, 4)
			prof[i] = smoothCircular(phaseMeans(r, m, seasonalDecay), m/48)
		}
	}
	return prof
}

// smoothCircular is a circular running mean of half-width w.
func smoothCircular(p []float64, w int) []float64 {
	if w < 1 {
		return p
	}
	m := len(p)
	out := make([]float64, m)
	for i := range p {
		s := 0.0
		for j := -w; j <= w; j++ {
			s += p[((i+j)%m+m)%m]
		}
		out[i] = s / float64(2*w+1)
	}
	c := mean(out)
	for i := range out {
		out[i] -= c
	}
	return out
}

// adjust returns y minus its seasonal components (NaN stays NaN).
func (c *mstlCore) adjust(y []float64) []float64 {
	z := make([]float64, len(y))
	for t, v := range y {
		z[t] = v - c.seasonal(t)
	}
	return z
}

func (c *mstlCore) seasonal(t int) float64 {
	s := 0.0
	for i, m := range c.periods {
		s += c.prof[i][t%m]
	}
	return s
}

func (c *mstlCore) reset() { c.n = 0; c.inner.reset() }
func (c *mstlCore) observe(v float64) {
	c.inner.observe(v - c.seasonal(c.n))
	c.n++
}
func (c *mstlCore) forecast(out []float64) {
	c.inner.forecast(out)
	for h := range out {
		out[h] += c.seasonal(c.n + h)
	}
}
func (c *mstlCore) label() string {
	ps := make([]string, len(c.periods))
	for i, m := range c.periods {
		ps[i] = fmt.Sprint(m)
	}
	return fmt.Sprintf("mstl[%s]-%s", strings.Join(ps, ","), c.inner.label())
}
func (c *mstlCore) bytes() int {
	b := 64 + c.inner.bytes()
	for _, p := range c.prof {
		b += 8 * len(p)
	}
	return b
}

// seasonalStrength is the share of variance of x the profiles explain.
func seasonalStrength(x []float64, prof [][]float64, periods []int) float64 {
	var vx, vr float64
	mx := mean(x)
	for t, v := range x {
		s := 0.0
		for i, m := range periods {
			s += prof[i][t%m]
		}
		vx += (v - mx) * (v - mx)
		vr += (v - s - mx) * (v - s - mx)
	}
	if vx == 0 {
		return 0
	}
	return math.Max(0, 1-vr/vx)
}

func newMSTLModel(o Options) *model {
	return &model{name: "mstl", opts: o, newCore: func(y []float64, o Options) (core, string, error) {
		periods, why := seasonalPeriods(y, o)
		inner := &etsSelect{specs: nonSeasonalETS}
		if len(periods) == 0 {
			return inner, "no usable season, non-seasonal ets; " + why, nil
		}
		return newMSTL(periods, inner), "seasonal decomposition with ets on the adjusted series; " + why, nil
	}}
}
