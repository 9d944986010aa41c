package forecast

import (
	"fmt"
	"sort"
)

// constructors maps model names to their constructors.
var constructors = map[string]func(Options) Forecaster{
	"naive":          func(o Options) Forecaster { return newNaiveModel(o) },
	"seasonal-naive": func(o Options) Forecaster { return newSnaiveModel(o) },
	"ets":            func(o Options) Forecaster { return newETSModel(o) },
	"theta":          func(o Options) Forecaster { return newThetaModel(o) },
	"mstl":           func(o Options) Forecaster { return newMSTLModel(o) },
	"auto":           func(o Options) Forecaster { return newAutoModel(o) },
	"arima":          func(o Options) Forecaster { return newARIMAModel(o) },
	"global":         func(o Options) Forecaster { return newGlobalModel(o, "nbeats") },
	"global-lstm":    func(o Options) Forecaster { m := newGlobalModel(o, "lstm"); m.name = "global-lstm"; return m },
}

// New returns an unfitted forecaster for the named model; see Models for the
// names. The empty name means "auto". It fails with ErrUnknownModel for an
// unknown name and with a descriptive error for invalid options.
func New(name string, opts Options) (Forecaster, error) {
	if name == "" {
		name = "auto"
	}
	mk, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("forecast: model %q: %w", name, ErrUnknownModel)
	}
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("forecast: %s: %w", name, err)
	}
	return mk(opts), nil
}

// validate rejects options no model can honour.
func (o Options) validate() error {
	if o.Step < 0 {
		return fmt.Errorf("step %v is negative", o.Step)
	}
	if o.Horizon < 0 || o.RefitEvery < 0 {
		return fmt.Errorf("horizon %d and refit interval %d must not be negative", o.Horizon, o.RefitEvery)
	}
	for _, q := range o.Quantiles {
		if !(q > 0 && q < 1) {
			return fmt.Errorf("quantile %v outside (0, 1)", q)
		}
	}
	for _, d := range o.Seasonality {
		if d <= 0 {
			return fmt.Errorf("seasonal period %v must be positive", d)
		}
	}
	return nil
}

// Models lists the names New accepts, sorted.
func Models() []string {
	out := make([]string, 0, len(constructors))
	for k := range constructors {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
