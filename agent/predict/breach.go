package predict

import (
	"fmt"
	"math"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/policies"
)

// BreachSteps is how many consecutive observations above the planning band
// of the forecasts made for them prove a series' forecast too low, and how
// many inside it show that the forecast has caught up.
const BreachSteps = 3

// breach checks a series' forecasts against what the series then showed,
// and corrects a forecast that observations prove too low.
//
// A model can go on forecasting a level the series has left: a seasonal
// model fitted on days unlike today repeats those days, and one whose
// history showed no error gives bands of no width. Refitting does not help
// while the history still says the old days were right. When BreachSteps
// observations in a row come above the planning quantile of the forecast
// made for them, the forecast is raised by how far the last BreachSteps
// observations were above its point forecast (an intercept correction):
// the model's shape over the horizon stays, its level becomes the one the
// series shows. It is raised until BreachSteps observations in a row fall
// inside the model's own planning band again. A forecast that runs high is
// left as it is: it costs capacity, not congestion.
//
// Observations inside a scheduled window of the policy are not checked,
// nor do they end a correction: there the forecast carries the event, and
// the observation measures it too.
type breach struct {
	// origin, step, mean and upper are the model's own forecast from the
	// last cycle (before any correction or scheduled event): mean[i] and
	// upper[i], its planning quantile, for origin + (i+1)·step.
	origin      time.Time
	step        time.Duration
	mean, upper []float64

	active bool
	// run counts the consecutive observations above the band (inactive)
	// or inside it (active).
	run int
	// since is the time of the first of the observations that started
	// the running correction.
	since time.Time
	// errs are the last BreachSteps errors over the point forecast,
	// oldest first.
	errs []float64
}

// observe checks the observations y brought since the last forecast (y[i]
// at start + i·step; the points after the last forecast's origin) against
// that forecast. scheduled reports whether the point at a time lies in a
// scheduled window of the policy.
func (b *breach) observe(y []float64, start time.Time, step time.Duration, scheduled func(time.Time) bool) {
	if b.mean == nil || step != b.step {
		return
	}
	for i, v := range y {
		at := start.Add(time.Duration(i) * step)
		k := int(at.Sub(b.origin)/step) - 1
		if !at.After(b.origin) || k >= len(b.mean) || math.IsNaN(v) || scheduled(at) {
			continue
		}
		// Above by more than rounding: a model that repeats a day
		// exactly must not breach its own band of no width.
		above := v > b.upper[k]+1e-9*math.Max(1, math.Abs(b.upper[k]))
		b.errs = append(b.errs, v-b.mean[k])
		if len(b.errs) > BreachSteps {
			b.errs = b.errs[len(b.errs)-BreachSteps:]
		}
		switch {
		case !b.active && above, b.active && !above:
			b.run++
		default:
			b.run = 0
		}
		if b.run >= BreachSteps {
			b.active, b.run = !b.active, 0
			if b.active {
				b.since = at.Add(-time.Duration(BreachSteps-1) * step)
			}
		}
	}
}

// remember keeps the model's own forecast p (before any correction) to
// check the next observations against, q being the planning quantile.
func (b *breach) remember(origin time.Time, step time.Duration, p forecast.Prediction, q float64) {
	upper := p.Quantile(q)
	if upper == nil || len(upper) != len(p.Mean) {
		b.mean, b.upper = nil, nil
		return
	}
	b.origin, b.step = origin, step
	b.mean, b.upper = append(b.mean[:0], p.Mean...), append(b.upper[:0], upper...)
}

// shift is how far the forecast is raised now: the mean error of the last
// BreachSteps observations over the point forecasts made for them, while a
// correction runs and that error is positive; else 0.
func (b *breach) shift() float64 {
	if !b.active || len(b.errs) == 0 {
		return 0
	}
	var sum float64
	for _, e := range b.errs {
		sum += e
	}
	return math.Max(0, sum/float64(len(b.errs)))
}

// correct returns p raised by the running correction, inside rng, and
// says why; p itself is not changed. It returns p and "" when no
// correction runs.
func (b *breach) correct(p forecast.Prediction, q float64, rng forecast.Range) (forecast.Prediction, string) {
	d := b.shift()
	if d <= 0 {
		return p, ""
	}
	out := p
	out.Mean = raise(p.Mean, d, rng)
	out.Bands = make([][]float64, len(p.Bands))
	for i, band := range p.Bands {
		out.Bands[i] = raise(band, d, rng)
	}
	return out, fmt.Sprintf("raised by %.3g, the mean error of the last %d observations: %d in a row ran above the %s band from %s; raised until %d in a row fall inside it",
		d, len(b.errs), BreachSteps, policies.QuantileName(q), b.since.UTC().Format("15:04"), BreachSteps)
}

func raise(v []float64, d float64, rng forecast.Range) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x + d
		if rng != (forecast.Range{}) {
			out[i] = math.Min(math.Max(out[i], rng.Min), rng.Max)
		}
	}
	return out
}

// scheduledAt reports whether the point of a series at a time (the
// samples of the step from it) overlaps a window of one of pol's
// schedules.
func scheduledAt(pol *policies.Policy, step time.Duration) func(time.Time) bool {
	return func(at time.Time) bool {
		for i := range pol.Schedules {
			if len(pol.Schedules[i].Windows(at, at.Add(step))) > 0 {
				return true
			}
		}
		return false
	}
}
