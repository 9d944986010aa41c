package forecast

import "math"

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
// The returned Forecaster also has a method AnomalyEvents() []AnomalyEvent
// listing the events found so far.
//
// The wrapper's own one-step forecast for the detector is the median of the
// last three samples, not the wrapped model's, so that wrapping costs no
// extra model work.
func WithAnomalyClipping(f Forecaster, opts AnomalyOptions) Forecaster {
	return &anomalyClipped{inner: f, opts: opts}
}

type anomalyClipped struct {
	inner Forecaster
	opts  AnomalyOptions
	det   *AnomalyDetector
	pred  anomRecentMedian
	out   []float64
}

var _ Forecaster = (*anomalyClipped)(nil)

func (a *anomalyClipped) Name() string { return a.inner.Name() }

// Fit detects anomalies over y and fits the wrapped model to the cleaned
// history.
func (a *anomalyClipped) Fit(y []float64) error {
	a.det = NewAnomalyDetector(a.opts)
	a.pred = anomRecentMedian{}
	pts := make([]AnomalyPoint, len(y))
	for i, v := range y {
		pts[i] = a.observe(v)
	}
	clean := anomClean(y, pts, a.det.Events(true))
	return a.inner.Fit(clean)
}

// Update screens the new samples online and updates the wrapped model.
func (a *anomalyClipped) Update(y ...float64) {
	if a.det == nil {
		a.det = NewAnomalyDetector(a.opts)
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
func (a *anomalyClipped) AnomalyEvents() []AnomalyEvent {
	if a.det == nil {
		return nil
	}
	return a.det.Events(true)
}

// observe feeds one sample to the detector with the median-of-three
// forecast.
func (a *anomalyClipped) observe(v float64) AnomalyPoint {
	p := a.det.Observe(v, a.pred.Next())
	a.pred.Push(v)
	return p
}
