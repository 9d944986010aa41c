package forecast

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Hotspot says whether and when a forecast crosses a line (capacity minus
// headroom) and how likely that is.
type Hotspot struct {
	// Crosses reports that the planning quantile goes over the line
	// within the horizon. A quantile at the line keeps the headroom the
	// line stands for, so it does not cross it: this is the planner's rule
	// too (agent/shape acts on a planning quantile over its line).
	Crosses bool
	// Step is the first step (1-based) at which the planning quantile is
	// over the line; 0 when it never is.
	Step int
	// At is the time of Step: start + Step·step; zero when !Crosses.
	At time.Time
	// Probability is the estimated probability that the series exceeds the
	// line at some step of the horizon, taken as the largest per-step
	// exceedance probability (a lower bound of the probability of the
	// union, exact when steps move together).
	Probability float64
	// PeakStep is the step with the largest exceedance probability.
	PeakStep int
}

// FindHotspot looks for the first step at which the planning quantile of p
// (for example 0.9) is over line (strictly: at the line is no crossing).
// start is the time of the last observation: step t lies at start + t·step.
// The exceedance probability at each step comes from the forecast's
// quantile function: piecewise linear between the produced levels, with
// exponential tails beyond the extreme levels fitted to the two outermost
// bands.
func FindHotspot(p Prediction, start time.Time, step time.Duration, line, planning float64) (Hotspot, error) {
	if planning <= 0 || planning >= 1 {
		return Hotspot{}, fmt.Errorf("hotspot: planning quantile %v outside (0, 1)", planning)
	}
	if len(p.Quantiles) < 2 || len(p.Bands) != len(p.Quantiles) {
		return Hotspot{}, fmt.Errorf("hotspot: prediction has %d quantile levels, need at least 2", len(p.Quantiles))
	}
	var h Hotspot
	steps := len(p.Bands[0])
	vals := make([]float64, len(p.Quantiles))
	for t := 0; t < steps; t++ {
		for i := range p.Quantiles {
			vals[i] = p.Bands[i][t]
		}
		if !h.Crosses && quantileAt(p.Quantiles, vals, planning) > line {
			h.Crosses, h.Step = true, t+1
			h.At = start.Add(time.Duration(t+1) * step)
		}
		if pe := exceedance(p.Quantiles, vals, line); pe > h.Probability {
			h.Probability, h.PeakStep = pe, t+1
		}
	}
	return h, nil
}

// quantileAt interpolates the value at level q from the levels and their
// values (both ascending), linearly inside and clamped outside.
func quantileAt(levels, vals []float64, q float64) float64 {
	n := len(levels)
	if q <= levels[0] {
		return vals[0]
	}
	if q >= levels[n-1] {
		return vals[n-1]
	}
	i := sort.SearchFloat64s(levels, q)
	if levels[i] == q {
		return vals[i]
	}
	f := (q - levels[i-1]) / (levels[i] - levels[i-1])
	return vals[i-1] + float64(f*(vals[i]-vals[i-1]))
}

// exceedance estimates P(Y > x) from quantile levels and values.
func exceedance(levels, vals []float64, x float64) float64 {
	n := len(levels)
	switch {
	case x >= vals[n-1]:
		// Upper tail: P(Y > x) = (1−q_n)·exp(−(x − v_n)/s), with s fitted so
		// that the tail passes through the last two levels.
		return tail(1-levels[n-1], 1-levels[n-2], vals[n-1]-vals[n-2], x-vals[n-1])
	case x < vals[0]:
		return 1 - tail(levels[0], levels[1], vals[1]-vals[0], vals[0]-x)
	}
	for i := 1; i < n; i++ {
		if x < vals[i] {
			d := vals[i] - vals[i-1]
			if d <= 0 {
				return 1 - levels[i]
			}
			f := (x - vals[i-1]) / d
			return 1 - (levels[i-1] + float64(f*(levels[i]-levels[i-1])))
		}
	}
	return 1 - levels[n-1]
}

// tail is p0·exp(−dist/s) where s makes the exponential pass from p0 at the
// outer value to p1 at gap inside it.
func tail(p0, p1, gap, dist float64) float64 {
	if dist <= 0 {
		return p0
	}
	if gap <= 0 || p1 <= p0 || p0 <= 0 {
		return 0
	}
	s := gap / math.Log(p1/p0)
	return p0 * math.Exp(-dist/s)
}
