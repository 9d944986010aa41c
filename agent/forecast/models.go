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
}

// New returns an unfitted forecaster for the named model; see Models for the
// names. The empty name means "auto".
func New(name string, opts Options) (Forecaster, error) {
	if name == "" {
		name = "auto"
	}
	mk, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("forecast: model %q: %w", name, ErrUnknownModel)
	}
	return mk(opts), nil
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
