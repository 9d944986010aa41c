package forecast

import (
	"math"

	"github.com/foreshape/foreshape/agent/forecast/anomaly"
)

// WithAnomalyClipping wraps a forecaster so that samples the anomaly
// detector marks anomalous are kept out of its fitting: Fit and Update pass
// them to the wrapped model as NaN (missing), which every model tolerates.
//
// Fit runs the detector over the whole history (each verdict still depends
// only on earlier points) and keeps the points of confirmed level shifts,
// which are the series' new level. Update continues the same detector
// online, one sample at a time; a level shift is only known once it is
// confirmed, so the few samples at the new level before confirmation reach
// the model as missing, and those after it as they are.
//
// The returned Forecaster also has a method AnomalyEvents() []anomaly.Event
// listing the events found so far.
//
// The wrapper's own one-step forecast for the detector is the median of the
// last three samples, not the wrapped model's, so that wrapping costs no
// extra model work.
func WithAnomalyClipping(f Forecaster, opts anomaly.Options) Forecaster {
	return &anomalyClipped{inner: f, opts: opts}
}

type anomalyClipped struct {
	inner Forecaster
	opts  anomaly.Options
	det   *anomaly.Stream
	out   []float64
}

var _ Forecaster = (*anomalyClipped)(nil)

func (a *anomalyClipped) Name() string { return a.inner.Name() }

// Fit detects anomalies over y and fits the wrapped model to the cleaned
// history.
func (a *anomalyClipped) Fit(y []float64) error {
	a.det = anomaly.NewStream(a.opts)
	pts := make([]anomaly.Point, len(y))
	for i, v := range y {
		pts[i] = a.observe(v)
	}
	clean := anomaly.Mask(y, pts, a.det.Events(true))
	return a.inner.Fit(clean)
}

// Update screens the new samples online and updates the wrapped model.
func (a *anomalyClipped) Update(y ...float64) {
	if a.det == nil {
		a.det = anomaly.NewStream(a.opts)
	}
	a.out = a.out[:0]
	for _, v := range y {
		p := a.observe(v)
		if p.Anomalous && !p.LevelShift {
			v = math.NaN()
		}
		a.out = append(a.out, v)
	}
	a.inner.Update(a.out...)
}

func (a *anomalyClipped) Forecast(h int) (Prediction, error) { return a.inner.Forecast(h) }

// AnomalyEvents returns the anomaly events found so far (by Fit and the
// updates since).
func (a *anomalyClipped) AnomalyEvents() []anomaly.Event {
	if a.det == nil {
		return nil
	}
	return a.det.Events(true)
}

func (a *anomalyClipped) observe(v float64) anomaly.Point { return a.det.Observe(v) }
