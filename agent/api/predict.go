package api

import (
	"fmt"
	"time"

	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/policies"
)

// The forecast loop's domain types (agent/predict) mapped to the API's
// JSON. Only this file knows both.

// FromForecast maps a forecast.
func FromForecast(f predict.Forecast) Forecast {
	out := Forecast{
		Policy: f.Policy, Locality: f.Locality.String(), Metric: f.Metric, Series: f.Key().String(),
		Status: ForecastReady, Origin: f.Origin, Step: f.Step.String(), Model: f.Model, Reason: f.Reason,
		Times: f.Times, Mean: f.Mean, Quantiles: f.Quantiles, Bands: f.Bands,
		PlanningQuantile: f.PlanningQuantile, Workload: FromWorkload(f.Workload),
	}
	if f.HasLine {
		line := f.Line
		out.Line = &line
	}
	for _, e := range f.Events {
		out.Events = append(out.Events, e.String())
		w := EventWindow{Kind: string(e.Kind), Schedule: e.Schedule, Start: e.Start, End: e.End}
		if e.From != (policies.Locality{}) {
			w.From = e.From.String()
		}
		out.EventWindows = append(out.EventWindows, w)
	}
	for _, p := range f.History {
		out.History = append(out.History, Point{Time: p.Time, Value: p.Value})
	}
	if f.Hotspot != nil {
		h := FromHotspot(*f.Hotspot)
		out.Hotspot = &h
	}
	return out
}

// FromPending maps a series without a forecast, with a note that says why:
// "warming up: 5 of 12 points, first forecast at T".
func FromPending(p predict.Pending, w *predict.Workload) Forecast {
	out := Forecast{
		Policy: p.Policy, Locality: p.Locality.String(), Metric: p.Metric, Series: p.Key().String(),
		Status: string(p.State), Note: p.Reason, Workload: FromWorkload(w),
	}
	if p.State == predict.WarmingUp {
		out.Warmup = &Warmup{Points: p.Points, Needed: p.Needed, FirstForecast: p.FirstAt}
		out.Note = WarmingUpNote(p.Points, p.Needed, p.FirstAt)
	}
	return out
}

// WarmingUpNote is how a series still warming up is described everywhere.
func WarmingUpNote(points, needed int, first time.Time) string {
	return fmt.Sprintf("warming up: %d of %d points, first forecast at %s", points, needed, first.Format(time.RFC3339))
}

// FromHotspot maps a hotspot.
func FromHotspot(h predict.Hotspot) Hotspot {
	return Hotspot{
		Policy: h.Policy, Locality: h.Locality.String(), Metric: h.Metric, At: h.At,
		Probability: h.Probability, Quantile: h.Quantile, Line: h.Line, Peak: h.Peak, Detected: h.Detected, Detail: h.Detail,
	}
}

// FromAnomaly maps an anomaly.
func FromAnomaly(a predict.Anomaly) Anomaly {
	return Anomaly{Series: a.Series.String(), Kind: string(a.Kind), Start: a.Start, End: a.End, Score: a.Score, P: a.P, Alarm: a.Alarm}
}

// FromWorkload maps a workload characterisation; nil stays nil.
func FromWorkload(w *predict.Workload) *Workload {
	if w == nil {
		return nil
	}
	return &Workload{
		Kind: string(w.Kind), SeasonalStrength: w.SeasonalStrength, Spikiness: w.Spikiness,
		Bound: string(w.Bound), IO: string(w.IO), From: w.From, Points: w.Points,
	}
}
