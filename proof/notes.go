package proof

import "time"

// Noter is implemented by controllers that report on their own run.
type Noter interface {
	Notes() Notes
}

// Notes are what a controller records about its run, for the report: its
// forecasts of each datacenter's CPU utilisation, made Lead ahead of the
// time they forecast, and its decisions.
type Notes struct {
	Forecasts []ForecastTrack
	Decisions []string
}

// ForecastTrack is one datacenter's forecast of CPU demand, in MHz, for
// each time, as it was forecast Lead earlier: the 10%, 50% and 90%
// quantiles (NaN where there was no forecast).
type ForecastTrack struct {
	Datacenter    string
	Lead          time.Duration
	Times         []time.Time
	P10, P50, P90 []float64
}
