package forecast

import "github.com/foreshape/foreshape/agent/forecast/internal/num"

// health tracks how a fitted model does on new observations so the caller
// can refit on a schedule or when residuals degrade, instead of every
// cycle.
type health struct {
	since  int     // observations since the fit
	every  int     // refit after this many observations
	expect float64 // calibrated one-step mean absolute residual
	ewma   float64 // recent mean absolute one-step residual
	seen   int     // finite observations scored
	one    [1]float64
}

// defaultRefitDays is how many days of observations a fitted model absorbs
// through Update before it reports itself stale, unless
// Options.RefitEvery says otherwise.
const defaultRefitDays = 1

// degradeFactor: recent one-step errors this many times the calibrated ones
// mark the model stale.
const degradeFactor = 2.5

// ewmaAlpha weighs new absolute residuals in the running mean (about the
// last hour of 5-minute samples).
const ewmaAlpha = 1.0 / 12

func newHealth(cal calibration, o Options) health {
	h := health{every: defaultRefitDays * o.daily()}
	if o.RefitEvery > 0 {
		h.every = o.RefitEvery
	}
	if len(cal.scale) > 0 {
		h.expect = cal.scale[0]
	}
	return h
}

// observe scores the one-step forecast of c against v; call before c
// observes v.
func (h *health) observe(c core, v float64) {
	h.since++
	if !num.Finite(v) {
		return
	}
	c.forecast(h.one[:])
	e := v - h.one[0]
	if e < 0 {
		e = -e
	}
	if h.seen == 0 {
		h.ewma = e
	} else {
		h.ewma += float64(ewmaAlpha * (e - h.ewma))
	}
	h.seen++
}

// Stale reports whether the model should be refitted, and why: after
// Options.RefitEvery observations (default one day of steps) since the fit,
// or when the recent one-step errors exceed degradeFactor times the
// calibrated ones.
func (h *health) Stale() (bool, string) {
	switch {
	case h.every > 0 && h.since >= h.every:
		return true, "refit schedule reached"
	case h.seen >= 12 && h.expect > 0 && h.ewma > degradeFactor*h.expect:
		return true, "residuals degraded"
	case h.seen >= 12 && h.expect == 0 && h.ewma > 0:
		return true, "residuals degraded"
	}
	return false, ""
}

// Refitter is implemented by forecasters that track their own health: the
// forecast loop calls Update every cycle and Fit only when Stale says so.
type Refitter interface {
	Stale() (bool, string)
}
