package forecast

import (
	"fmt"
	"math"
	"sort"
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
// components: remove a centred moving average of length m (the trend),
// average the rest per phase with recent cycles weighted more
// (seasonalDecay per cycle), clip what that profile leaves unexplained at 4
// robust standard deviations (so spikes and anomalies do not leak into the
// profile) and average again, then smooth the profile with a circular
// running median and centre it. Two passes over the periods refine each component given the others.
type mstlCore struct {
	periods []int
	prof    [][]float64
	inner   core
	n       int
	// cache, when set, shares decompositions between cores fitted on
	// prefixes of the same history (auto's candidates).
	cache *decompCache
}

// decompCache holds decompositions of prefixes of one history, keyed by
// prefix length. It is only valid while every fit it serves sees a prefix
// of the same series with the same periods.
type decompCache struct {
	byLen map[int][][]float64
}

func (d *decompCache) get(x []float64, periods []int) [][]float64 {
	if d == nil {
		return decompose(x, periods)
	}
	if p, ok := d.byLen[len(x)]; ok {
		return p
	}
	if d.byLen == nil {
		d.byLen = map[int][][]float64{}
	}
	p := decompose(x, periods)
	d.byLen[len(x)] = p
	return p
}

func newMSTL(periods []int, inner core) *mstlCore {
	return &mstlCore{periods: periods, inner: inner}
}

// seasonalDecay weighs each cycle back by this factor in the profile.
const seasonalDecay = 0.9

func (c *mstlCore) fit(y []float64) error {
	c.prof = c.cache.get(fillGaps(y), c.periods)
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
			prof[i] = smoothCircular(robustProfile(detrendMA(d, m), m, seasonalDecay), m/48)
		}
	}
	return prof
}

// robustProfile is the per-phase mean of r (see phaseMeans) after clipping
// the remainder (r minus the per-phase medians) at 4 robust standard
// deviations,
// so that spikes do not leak into the profile while sharp seasonal shapes
// (a weekend step) are kept.
func robustProfile(r []float64, m int, decay float64) []float64 {
	prof := phaseMedians(r, m)
	rem := make([]float64, len(r))
	for t, v := range r {
		rem[t] = v - prof[t%m]
	}
	med, mad := medianMAD(rem)
	if mad <= 0 {
		return prof
	}
	lo, hi := med-4*mad, med+4*mad
	clipped := make([]float64, len(r))
	for t, e := range rem {
		clipped[t] = prof[t%m] + math.Min(math.Max(e, lo), hi)
	}
	return phaseMeans(clipped, m, decay)
}

// phaseMedians is the median of r per phase t mod m.
func phaseMedians(r []float64, m int) []float64 {
	out := make([]float64, m)
	buf := make([]float64, 0, len(r)/m+1)
	for p := 0; p < m; p++ {
		buf = buf[:0]
		for t := p; t < len(r); t += m {
			if finite(r[t]) {
				buf = append(buf, r[t])
			}
		}
		if len(buf) > 0 {
			sort.Float64s(buf)
			out[p] = quantileSorted(buf, 0.5)
		}
	}
	return out
}

// smoothCircular is a circular running median of half-width w, centred to
// zero mean: it removes phase-to-phase noise but keeps sharp seasonal
// edges (the start of a weekend, a nightly batch).
func smoothCircular(p []float64, w int) []float64 {
	if w < 1 {
		return p
	}
	m := len(p)
	out := make([]float64, m)
	buf := make([]float64, 2*w+1)
	for i := range p {
		for j := -w; j <= w; j++ {
			buf[j+w] = p[((i+j)%m+m)%m]
		}
		sort.Float64s(buf)
		out[i] = buf[w]
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
