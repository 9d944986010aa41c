package forecast

import (
	"errors"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/global"
)

// DefaultQuantiles are the quantiles every forecast carries unless a policy
// asks for others.
var DefaultQuantiles = []float64{0.025, 0.05, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99}

// Options configure a forecaster for one series.
type Options struct {
	// Step is the sampling interval of the series (for example 5m). Seasonal
	// periods are derived from it: a daily period is 24h/Step points.
	Step time.Duration
	// Seasonality lists the candidate seasonal periods. Empty means "auto":
	// the model detects periods from the data.
	Seasonality []time.Duration
	// Quantiles to produce; nil means DefaultQuantiles.
	Quantiles []float64
	// Horizon is the longest horizon, in steps, the caller will ask
	// Forecast for. Fit calibrates the quantile bands from backtest
	// residuals at every step up to Horizon; beyond it bands widen by the
	// square root of the step ratio. Zero means DefaultHorizon.
	Horizon int
	// RefitEvery is how many observations a fitted model absorbs through
	// Update before Stale asks for a refit. Zero means one day of steps.
	RefitEvery int
	// Global, when set, returns the learned global network the "global"
	// models and auto use at their next fit (the agent's fine-tuned one);
	// nil, or a nil or mismatched network, means the one foreshape ships
	// for Step (package global), when there is one.
	Global func() *global.Model
	// AsGiven fits the single models on the history exactly as given,
	// without moving the history before a level shift to the current
	// level: a baseline then forecasts by its textbook definition (the
	// evaluation's naive and seasonal naive). auto ignores it.
	AsGiven bool
}

// DefaultHorizon is the calibrated horizon, in steps, when Options.Horizon
// is zero.
const DefaultHorizon = 12

// DefaultStep is assumed when Options.Step is zero.
const DefaultStep = 5 * time.Minute

func (o Options) step() time.Duration {
	if o.Step <= 0 {
		return DefaultStep
	}
	return o.Step
}

// daily is the number of steps in one day.
func (o Options) daily() int {
	d := int((24 * time.Hour) / o.step())
	if d < 1 {
		return 1
	}
	return d
}

func (o Options) horizon() int {
	if o.Horizon <= 0 {
		return DefaultHorizon
	}
	return o.Horizon
}

func (o Options) quantiles() []float64 {
	if len(o.Quantiles) == 0 {
		return DefaultQuantiles
	}
	return o.Quantiles
}

// Forecaster is one model fitted to one series. A Forecaster is not safe for
// concurrent use.
//
// y is a regular grid at Options.Step; NaN marks a missing or excluded
// (anomalous) point, which models must tolerate.
type Forecaster interface {
	// Name is the model's name as accepted by New ("ets", "auto", …).
	Name() string
	// Fit (re)fits the model to the whole history y, replacing any state.
	Fit(y []float64) error
	// Update appends new observations and updates the fitted state cheaply,
	// without refitting parameters.
	Update(y ...float64)
	// Forecast predicts the next h points after the last observation.
	Forecast(h int) (Prediction, error)
}

// Prediction is a forecast over h steps with quantile bands.
type Prediction struct {
	// Model names the model that produced it; for "auto" the chosen model or
	// combination (for example "auto(ets+theta)").
	Model string
	// Reason explains the choice in a sentence an operator can read
	// ("cold start: 1.2 days of history, fewer than two seasons").
	Reason string
	// Mean is the point forecast, length h.
	Mean []float64
	// Quantiles are the levels of Bands, ascending.
	Quantiles []float64
	// Bands[i][t] is the Quantiles[i] quantile at step t+1.
	Bands [][]float64
}

// Quantile returns the band for level q, or nil when q was not produced.
func (p Prediction) Quantile(q float64) []float64 {
	for i, l := range p.Quantiles {
		if abs(l-q) < 1e-9 {
			return p.Bands[i]
		}
	}
	return nil
}

// ErrTooShort is returned by Fit or Forecast when the history is too short
// for the model to say anything.
var ErrTooShort = errors.New("forecast: history too short")

// ErrUnknownModel is returned by New for a model name it does not know.
var ErrUnknownModel = errors.New("forecast: unknown model")

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
