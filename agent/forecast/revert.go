package forecast

import (
	"math"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// revertLevel forecasts that the series returns from its last value to the
// mean of its recent window as fast as its autocorrelation says: the step-h
// forecast is mean + ρ(h)·(last − mean), with ρ(h) the window's sample
// autocorrelation at lag h, clipped to [0, 1] and never rising with h. A
// series that wanders (a trend, a new level) has ρ near 1 and is forecast
// near its last value; one that swings around a level (many allocations of
// a bursty job summed) has ρ falling to 0 and is forecast near the level.
type revertLevel struct {
	mean float64
	rho  []float64 // ρ(h) for h = 1..len(rho)
	last float64   // the last finite observation
}

// revertWindow is the window, in horizons, whose mean and autocorrelation
// revertLevel uses.
const revertWindow = 4

// minRevertPairs is the fewest pairs of points a lag's autocorrelation is
// estimated from; longer lags keep the last estimate.
const minRevertPairs = 10

// newRevertLevel fits revertLevel to the last revertWindow·H points of y
// (NaN for missing points); nil when y holds no finite point.
func newRevertLevel(y []float64, H int) *revertLevel {
	x := y[max(0, len(y)-revertWindow*H):]
	mean, n := 0.0, 0
	for _, v := range x {
		if num.Finite(v) {
			mean += v
			n++
		}
	}
	if n == 0 {
		return nil
	}
	mean /= float64(n)
	r := &revertLevel{mean: mean, rho: make([]float64, H), last: math.NaN()}
	for _, v := range y {
		if num.Finite(v) {
			r.last = v
		}
	}
	var v0 float64
	for _, v := range x {
		if num.Finite(v) {
			v0 += float64((v - mean) * (v - mean))
		}
	}
	rho := 1.0
	for h := 1; h <= H; h++ {
		if v0 > 0 {
			c, pairs := 0.0, 0
			for i := 0; i+h < len(x); i++ {
				if a, b := x[i], x[i+h]; num.Finite(a) && num.Finite(b) {
					c += float64((a - mean) * (b - mean))
					pairs++
				}
			}
			if pairs >= minRevertPairs {
				// Normalised by the window's variance, as the sample
				// autocorrelation is: shrinks towards 0 at long lags.
				rho = math.Max(0, math.Min(rho, c/v0))
			}
		}
		r.rho[h-1] = rho
	}
	return r
}

// at is the forecast h ≥ 1 steps ahead.
func (r *revertLevel) at(h int) float64 {
	rho := r.rho[min(h, len(r.rho))-1]
	return r.mean + rho*(r.last-r.mean)
}
