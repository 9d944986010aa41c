package proof

import (
	"time"

	"github.com/foreshape/foreshape/policies"
)

// Params are the settings every controller shares, so that they differ in
// how they act and not in what they aim for. The defaults are foreshape's
// policy defaults; they were not tuned on any scenario.
type Params struct {
	// Interval is the control cycle: every controller acts once per
	// Interval of virtual time. Default 1m.
	Interval time.Duration
	// Observe is how often the baselines read utilisation: the
	// scenario's observe_every, else Interval. A multiple of Interval.
	// foreshape and oracle collect and forecast at their policies'
	// forecast step, the longer of 5 minutes and Observe.
	Observe time.Duration
	// Headroom is the percent of CPU and memory kept free: the line at
	// 100-Headroom is the throttle's and the autoscaler's threshold, the
	// overload metric's line and foreshape's planning line. Default 20.
	Headroom float64
	// MaxParallel caps concurrent moves through one locality (throttle,
	// reactive, and foreshape's migrate.max_parallel). Default 2.
	MaxParallel int
	// Cooldown is the quiet time after a scale action. Default 5m.
	Cooldown time.Duration
	// MaxScaleOut bounds the nodes a controller may add to one locality,
	// as a fraction of the nodes the scenario declares there. Default 0.5.
	MaxScaleOut float64
	// SpreadByUse sets foreshape's and oracle's migrate.spread_by_use:
	// spreading also reads each task group's own use (foreshape from
	// allocation stats, oracle from the truth). Default false.
	SpreadByUse bool
}

// DefaultParams returns the defaults.
func DefaultParams() Params {
	return Params{
		Interval:    time.Minute,
		Headroom:    policies.DefaultHeadroom,
		MaxParallel: policies.DefaultMaxParallel,
		Cooldown:    policies.DefaultCooldown,
		MaxScaleOut: 0.5,
	}
}

// Line is the utilisation line as a fraction of capacity.
func (p Params) Line() float64 { return (100 - p.Headroom) / 100 }

func (p Params) withDefaults() Params {
	d := DefaultParams()
	if p.Interval <= 0 {
		p.Interval = d.Interval
	}
	if p.Observe < p.Interval {
		p.Observe = p.Interval
	}
	if p.Headroom <= 0 {
		p.Headroom = d.Headroom
	}
	if p.MaxParallel <= 0 {
		p.MaxParallel = d.MaxParallel
	}
	if p.Cooldown <= 0 {
		p.Cooldown = d.Cooldown
	}
	if p.MaxScaleOut <= 0 {
		p.MaxScaleOut = d.MaxScaleOut
	}
	return p
}
