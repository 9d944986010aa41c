package forecast

import (
	"fmt"
	"strings"
	"sync"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
	"github.com/foreshape/foreshape/agent/forecast/season"
)

// mstlCore handles long and multiple seasonal periods (288 and 2016 steps at
// five minutes) the way MSTL does: it decomposes the history into one
// seasonal component per period by iterated robust seasonal extraction,
// forecasts the seasonally adjusted series with a non-seasonal inner model,
// and projects each seasonal component as a seasonal naive of the component
// (its profile). It never gives an ETS hundreds of seasonal states. The
// extraction is season.Decompose.
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
// auto backtests its candidates concurrently: mu makes a fit that needs
// a decomposition another is computing wait for it.
type decompCache struct {
	mu    sync.Mutex
	byLen map[int][][]float64
}

func (d *decompCache) get(x []float64, periods []int) [][]float64 {
	if d == nil {
		return season.Decompose(x, periods)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.byLen[len(x)]; ok {
		return p
	}
	if d.byLen == nil {
		d.byLen = map[int][][]float64{}
	}
	p := season.Decompose(x, periods)
	d.byLen[len(x)] = p
	return p
}

func newMSTL(periods []int, inner core) *mstlCore {
	return &mstlCore{periods: periods, inner: inner}
}

func (c *mstlCore) fit(y []float64) error {
	c.prof = c.cache.get(num.FillGaps(y), c.periods)
	z := c.adjust(y)
	if err := c.inner.fit(z); err != nil {
		return err
	}
	c.reset()
	return nil
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
