// Package predict is the leader's forecast loop: for every policy, metric
// and locality it reads the series from the replicated store, keeps the
// engine's per-series pipeline for it (forecast.Pipeline: anomaly masking,
// a model updated cheaply each cycle and refitted when due, forecasts
// clamped into the metric's physical range), forecasts the policy's
// horizon with quantile bands, raises a forecast its series has proven too
// low (breach.go), applies the policy's scheduled events as known future
// changes, finds hotspots, and characterises each locality's
// workload. For policies with a scale block it also forecasts the absolute
// demand behind CPU and memory (Demand), which the planner reads over the
// capacity the locality has now. A series that has not had a sample for StaleSteps of its steps,
// or that the leader marked stale, is not forecast: its forecast is
// withdrawn. Results are the domain types of types.go; the HTTP API maps
// them to its JSON.
//
// It owns model state, which is derived data: a new leader rebuilds it from
// the replicated series. It takes `now` as an argument, never reads the
// clock, performs no I/O beyond the Store it is given, and writes nothing to
// replicated state.
package predict

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
)

// Store is the part of the replicated state the loop reads.
type Store interface {
	Info(key state.Key) (state.Info, bool)
	Latest(key state.Key) (state.Point, bool)
	Range(key state.Key, step time.Duration, from, to time.Time) (state.Grid, error)
}

// Metrics forecast for every policy. CPU and memory are percent of the
// locality's allocatable capacity, so the headroom line is 100 minus the
// policy's headroom; IOPS has no capacity Nomad reports, so it has no line.
var Metrics = []string{source.CPUPercent, source.MemoryPercent, source.IOPS}

// metricsOf is Metrics plus the metrics of the policy's own Prometheus
// queries, in order.
func metricsOf(pol *policies.Policy) []string {
	out := append([]string(nil), Metrics...)
	var extra []string
	for m := range pol.Forecast.Queries {
		if !slices.Contains(Metrics, m) {
			extra = append(extra, m)
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// MinPoints is the least history a series needs before it is forecast.
const MinPoints = 12

// StaleSteps is how many of its sampling steps a series may go without a
// sample before it is no longer forecast (the collector marks it stale
// after as many).
const StaleSteps = 3

// historyShown is how many recent points a forecast carries for charts.
const historyShown = 48

// Predictor holds the fitted models. It is used from the leader loop only.
type Predictor struct {
	log       hclog.Logger
	models    map[modelKey]*tracked
	workloads *workloads
	tuner     *tuner
}

type modelKey struct {
	policy string
	series string
}

type tracked struct {
	p    *forecast.Pipeline
	sig  string    // model name, step and seasonality it was built for
	last time.Time // time of the last observation absorbed
	step time.Duration
	// breach checks the model's forecasts against what the series then
	// showed (see breach).
	breach breach
}

// forecast forecasts h steps ahead of origin, the time of y's last point
// (y[i] at start + i·step), after checking the observations y brought
// since the previous forecast against that forecast; while they prove the
// model's forecasts too low, the result is raised, and corrected says by
// how much and why ("" otherwise). q is the planning quantile, rng the
// series' physical range, scheduled whether the point at a time lies in a
// scheduled window of the policy.
func (t *tracked) forecast(h int, y []float64, start, origin time.Time, q float64, rng forecast.Range, scheduled func(time.Time) bool) (pred forecast.Prediction, corrected string, err error) {
	pred, err = t.p.Forecast(h)
	if err != nil {
		return pred, "", err
	}
	k := max(0, len(y)-h-1) // only the points a previous forecast can reach
	t.breach.observe(y[k:], start.Add(time.Duration(k)*t.step), t.step, scheduled)
	t.breach.remember(origin, t.step, pred, q)
	pred, corrected = t.breach.correct(pred, q, rng)
	return pred, corrected, nil
}

// New returns an empty predictor.
func New(log hclog.Logger) *Predictor {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Predictor{log: log.Named("predict"), models: map[modelKey]*tracked{}, workloads: newWorkloads(), tuner: newTuner()}
}

// Close waits for a fine-tuning of the global networks that is still
// running (see TuneEvery) to end.
func (p *Predictor) Close() { p.tuner.wait() }

// Result is one cycle's output.
type Result struct {
	Forecasts []Forecast
	// Hotspots are the forecasts' hotspots, earliest first.
	Hotspots  []Hotspot
	Anomalies []Anomaly
	// Pending are the policies' series not forecast this cycle, and why.
	Pending []Pending
	// Workloads characterise the policies' localities (nil entries: too
	// little history yet).
	Workloads map[policies.Locality]*Workload
}

// RunOnce forecasts every policy's metrics at now. nodes are the cluster's
// nodes as the collector last listed them, which the hotspots of a
// locality some of whose nodes a drain takes read the share of its
// capacity that stays from (findHotspot); none when the node list is not
// known (no Nomad source, or not listed yet), and then they read the
// locality as measured.
func (p *Predictor) RunOnce(now time.Time, store Store, pols []*policies.Policy, nodes ...Node) Result {
	res := Result{Workloads: map[policies.Locality]*Workload{}}
	live := map[modelKey]bool{}
	locs := map[policies.Locality]bool{}
	for _, pol := range pols {
		locs[pol.Locality] = true
		w, ok := res.Workloads[pol.Locality]
		if !ok {
			w = p.workloads.of(store, pol.Locality, now)
			res.Workloads[pol.Locality] = w
		}
		for _, metric := range metricsOf(pol) {
			key := state.Key{Locality: pol.Locality.String(), Metric: metric}
			mk := modelKey{pol.Name, key.String()}
			live[mk] = true
			if abs := absoluteOf(metric); abs != "" && len(pol.Scales) > 0 {
				live[modelKey{pol.Name, state.Key{Locality: key.Locality, Metric: abs}.String()}] = true
			}
			fc, pending := p.forecastOne(now, store, pol, pols, key, nodes)
			if pending != nil {
				pending.Policy, pending.Locality, pending.Metric = pol.Name, pol.Locality, metric
				res.Pending = append(res.Pending, *pending)
				continue
			}
			fc.Workload = w
			res.Forecasts = append(res.Forecasts, fc)
			if fc.Hotspot != nil {
				res.Hotspots = append(res.Hotspots, *fc.Hotspot)
			}
			if t := p.models[mk]; t != nil {
				res.Anomalies = append(res.Anomalies, t.anomalies(key)...)
			}
		}
	}
	for mk := range p.models { // policies removed or renamed on reload
		if !live[mk] {
			delete(p.models, mk)
		}
	}
	p.workloads.forget(locs)
	p.tuner.maybeStart(now)
	sort.Slice(res.Hotspots, func(i, j int) bool { return res.Hotspots[i].At.Before(res.Hotspots[j].At) })
	return res
}

// stale says why the series must not be forecast at now, or "": the leader
// marked it stale, or its newest sample is more than StaleSteps of its
// steps old.
func stale(info state.Info, now time.Time, step time.Duration) string {
	if info.Stale {
		return fmt.Sprintf("stale since %s: %s", info.StaleSince.Format(time.RFC3339), info.StaleReason)
	}
	if info.Step > 0 {
		step = info.Step
	}
	if age := now.Sub(info.LastSample); age > StaleSteps*step {
		return fmt.Sprintf("stale: no sample since %s (%s ago, more than %d steps of %s)",
			info.LastSample.Format(time.RFC3339), age.Round(time.Second), StaleSteps, step)
	}
	return ""
}

func (p *Predictor) forecastOne(now time.Time, store Store, pol *policies.Policy, pols []*policies.Policy, key state.Key, nodes []Node) (Forecast, *Pending) {
	info, ok := store.Info(key)
	if !ok || info.LastSample.IsZero() {
		return Forecast{}, &Pending{State: NoData, Reason: "no samples yet"}
	}
	step := pol.Forecast.Step
	if why := stale(info, now, step); why != "" {
		return Forecast{}, &Pending{State: Stale, Reason: why}
	}
	end := info.LastSample.Truncate(step).Add(step) // exclusive: includes the newest bucket
	if end.After(now.Add(step)) {
		end = now.Truncate(step).Add(step)
	}
	from := end.Add(-pol.Forecast.History)
	grid, err := store.Range(key, step, from, end)
	if err != nil {
		return Forecast{}, &Pending{State: Failed, Reason: fmt.Sprintf("read series: %v", err)}
	}
	y := grid.Mean
	first := 0
	for first < len(y) && math.IsNaN(y[first]) {
		first++
	}
	lastIdx := len(y) - 1
	for lastIdx >= first && math.IsNaN(y[lastIdx]) {
		lastIdx--
	}
	if n := lastIdx - first + 1; n < MinPoints {
		n = max(0, n)
		last := info.LastSample.Truncate(step)
		if n > 0 {
			last = grid.Time(lastIdx)
		}
		firstAt := last.Add(time.Duration(MinPoints-n) * step)
		return Forecast{}, &Pending{State: WarmingUp, Points: n, Needed: MinPoints, FirstAt: firstAt,
			Reason: fmt.Sprintf("warming up: %d of %d points, first forecast at %s", n, MinPoints, firstAt.Format(time.RFC3339))}
	}
	y = y[first : lastIdx+1]
	start := grid.Start.Add(time.Duration(first) * step)
	origin := start.Add(time.Duration(len(y)-1) * step)

	mk := modelKey{pol.Name, key.String()}
	t, err := p.model(mk, pol, key, start, origin, y)
	if err != nil {
		delete(p.models, mk) // start afresh next cycle
		return Forecast{}, &Pending{State: Failed, Reason: err.Error()}
	}
	h := pol.Forecast.Steps()
	pred, corrected, err := t.forecast(h, y, start, origin, pol.Forecast.Quantile, physicalRange(key.Metric), scheduledAt(pol, step))
	if err != nil {
		return Forecast{}, &Pending{State: Failed, Reason: fmt.Sprintf("forecast: %v", err)}
	}
	reason := pred.Reason
	if corrected != "" {
		reason += "; " + corrected
	}

	fc := Forecast{
		Policy: pol.Name, Locality: pol.Locality, Metric: key.Metric,
		Origin: origin, Step: step, Model: pred.Model, Reason: reason,
		Mean: pred.Mean, Quantiles: pred.Quantiles, Bands: pred.Bands,
		PlanningQuantile: pol.Forecast.Quantile,
	}
	for i := range pred.Mean {
		fc.Times = append(fc.Times, origin.Add(time.Duration(i+1)*step))
	}
	for i := max(0, len(y)-historyShown); i < len(y); i++ {
		if !math.IsNaN(y[i]) {
			fc.History = append(fc.History, Point{Time: start.Add(time.Duration(i) * step), Value: y[i]})
		}
	}
	raw := append([]float64(nil), fc.Mean...)
	fc.Events = applySchedules(&fc, pol, pols, history{y: y, start: start, step: step}, raw, movedFrom(store, pol.Locality, now, step), nodes)
	if line, ok := headroomLine(pol, key.Metric); ok {
		fc.Line, fc.HasLine = line, true
		fc.Hotspot = findHotspot(&fc, step, now, nodes)
	}
	fc.Demand = p.demand(now, store, pol, pols, key, from, end, &fc)
	return fc, nil
}

// absoluteOf is the absolute metric behind a percent one, or "".
func absoluteOf(metric string) string {
	switch metric {
	case source.CPUPercent:
		return source.CPUMHz
	case source.MemoryPercent:
		return source.MemoryMB
	}
	return ""
}

// demand forecasts the absolute use behind fc's percent metric from its
// own history over [from, end), with the policy's scheduled events, for a
// policy with a scale block (the planner sizes its hotspot scale-outs on
// it). It returns nil for other policies and metrics, and when the history
// does not reach fc's origin (a locality's absolute use is published only
// when every node answered).
func (p *Predictor) demand(now time.Time, store Store, pol *policies.Policy, pols []*policies.Policy, key state.Key, from, end time.Time, fc *Forecast) *Demand {
	abs := absoluteOf(key.Metric)
	if abs == "" || len(pol.Scales) == 0 {
		return nil
	}
	akey := state.Key{Locality: key.Locality, Metric: abs}
	step := pol.Forecast.Step
	info, ok := store.Info(akey)
	if !ok || info.LastSample.IsZero() || stale(info, now, step) != "" {
		return nil
	}
	grid, err := store.Range(akey, step, from, end)
	if err != nil {
		return nil
	}
	y := grid.Mean
	first, last := 0, len(y)-1
	for first < len(y) && math.IsNaN(y[first]) {
		first++
	}
	for last >= first && math.IsNaN(y[last]) {
		last--
	}
	if last-first+1 < MinPoints || !grid.Time(last).Equal(fc.Origin) {
		return nil
	}
	y = y[first : last+1]
	start := grid.Time(first)
	t, err := p.model(modelKey{pol.Name, akey.String()}, pol, akey, start, fc.Origin, y)
	if err != nil {
		delete(p.models, modelKey{pol.Name, akey.String()})
		return nil
	}
	pred, _, err := t.forecast(pol.Forecast.Steps(), y, start, fc.Origin, pol.Forecast.Quantile, physicalRange(abs), scheduledAt(pol, step))
	if err != nil || len(pred.Mean) != len(fc.Times) || !slices.Equal(pred.Quantiles, fc.Quantiles) {
		return nil
	}
	dfc := Forecast{Policy: pol.Name, Locality: pol.Locality, Metric: abs, Origin: fc.Origin, Step: step,
		Times: fc.Times, Mean: pred.Mean, Quantiles: pred.Quantiles, Bands: pred.Bands}
	raw := append([]float64(nil), dfc.Mean...)
	applySchedules(&dfc, pol, pols, history{y: y, start: start, step: step}, raw, movedAbsolute(store, now, step), nil, fc.Events...)
	return &Demand{Metric: abs, Mean: dfc.Mean, Bands: dfc.Bands, DrainAdded: dfc.DrainAdded}
}

// model returns the series' pipeline, advanced over the points it has not
// seen (it updates or refits its model as due: see forecast.Pipeline), or
// a new one when the series is new, its settings changed, or the history
// no longer joins what the pipeline saw.
func (p *Predictor) model(mk modelKey, pol *policies.Policy, key state.Key, start, origin time.Time, y []float64) (*tracked, error) {
	step := pol.Forecast.Step
	sig := fmt.Sprintf("%s/%s/%v/%v", pol.Forecast.Model, step, pol.Forecast.Seasonality, pol.Forecast.Horizon)
	t := p.models[mk]
	n := len(y)
	if t != nil {
		n = int(origin.Sub(t.last) / step)
	}
	if t == nil || t.sig != sig || n < 0 || n > len(y) || start.After(t.last) {
		// New, reconfigured, or the history no longer joins what the model
		// saw (a gap longer than the window, or time went backwards).
		pl, err := forecast.NewPipeline(forecast.PipelineOptions{
			Model: pol.Forecast.Model,
			Options: forecast.Options{
				Step: step, Horizon: pol.Forecast.Steps(), Seasonality: pol.Forecast.Seasonality,
				Quantiles: withLevel(forecast.DefaultQuantiles, pol.Forecast.Quantile),
				Global:    p.tuner.model(step),
			},
			Range: physicalRange(key.Metric),
		})
		if err != nil {
			return nil, fmt.Errorf("model %q: %v", pol.Forecast.Model, err)
		}
		t = &tracked{p: pl, sig: sig, step: step}
		p.models[mk] = t
		n = len(y)
	}
	why, err := t.p.AdvanceAt(y, n, origin)
	if err != nil {
		return nil, err
	}
	p.tuner.offer(key.String(), step, y, origin)
	if why != "" {
		p.log.Debug("refitted", "policy", mk.policy, "series", mk.series, "reason", why)
	}
	t.last = origin
	return t, nil
}

// physicalRange is what a metric's measurements can show: CPU and memory
// are shares of the locality's capacity (demand beyond it is not served,
// so not measured), other metrics are rates or sizes.
func physicalRange(metric string) forecast.Range {
	switch metric {
	case source.CPUPercent, source.MemoryPercent:
		return forecast.Percent
	}
	return forecast.NonNegative
}

// withLevel returns levels with q added (sorted), so that the planning
// quantile is always one of the bands.
func withLevel(levels []float64, q float64) []float64 {
	out := append([]float64(nil), levels...)
	for _, l := range out {
		if math.Abs(l-q) < 1e-9 {
			return out
		}
	}
	out = append(out, q)
	sort.Float64s(out)
	return out
}

// anomalies are the pipeline's recent anomaly events on the series key,
// with their times.
func (t *tracked) anomalies(key state.Key) []Anomaly {
	ev := t.p.Events()
	out := make([]Anomaly, 0, len(ev))
	at := func(i int) time.Time { return t.last.Add(-time.Duration(t.p.Seen()-1-i) * t.step) }
	for _, e := range ev {
		out = append(out, Anomaly{Series: key, Kind: AnomalyKind(e.Kind), Start: at(e.Start), End: at(e.End), Score: e.Score, P: e.P, Alarm: e.Alarm})
	}
	return out
}

// headroomLine is the value a metric's planning quantile must stay under.
func headroomLine(pol *policies.Policy, metric string) (float64, bool) {
	switch metric {
	case source.CPUPercent:
		return 100 - pol.Headroom.CPU, true
	case source.MemoryPercent:
		return 100 - pol.Headroom.Memory, true
	}
	return 0, false
}

// findHotspot reports when the planning quantile first goes over the
// line (at it is no crossing, as for the planner) and how likely a
// crossing is within the horizon (forecast.FindHotspot on the forecast
// after scheduled events were applied). Inside the window of
// a drain of some of the locality's nodes, a step is judged on the nodes
// that stay: its quantiles ×all ÷ rest of the locality's ready capacity as
// nodes lists it now (onRest). The percent is measured over all its ready
// nodes, drained or not, and the work of those drained runs on the rest,
// so while they are up it understates the rest's load by that factor;
// once they are down they are out of the base and the factor is 1. The
// forecast itself is not changed: it is of the measured series.
func findHotspot(fc *Forecast, step time.Duration, now time.Time, nodes []Node) *Hotspot {
	if !fc.HasLine || len(fc.Times) == 0 {
		return nil
	}
	rest := onRest(fc, nodes)
	p := forecast.Prediction{Mean: fc.Mean, Quantiles: fc.Quantiles, Bands: fc.Bands}
	if rest != nil {
		on := func(v []float64) []float64 {
			out := slices.Clone(v)
			for i, r := range rest {
				if i < len(out) {
					out[i] *= r.factor
				}
			}
			return out
		}
		p.Mean, p.Bands = on(fc.Mean), make([][]float64, len(fc.Bands))
		for q, b := range fc.Bands {
			p.Bands[q] = on(b)
		}
	}
	h, err := forecast.FindHotspot(p, fc.Origin, step, fc.Line, fc.PlanningQuantile)
	if err != nil || !h.Crosses {
		return nil
	}
	peak, peakAt := math.Inf(-1), -1
	if band := fc.Band(fc.PlanningQuantile); band != nil {
		for i, v := range band {
			if rest != nil {
				v *= rest[i].factor
			}
			if v > peak {
				peak, peakAt = v, i
			}
		}
	}
	hs := &Hotspot{
		Policy: fc.Policy, Locality: fc.Locality, Metric: fc.Metric,
		At: h.At, Probability: h.Probability, Quantile: fc.PlanningQuantile,
		Line: fc.Line, Peak: peak, Detected: now,
	}
	if rest == nil {
		return hs
	}
	band := fc.Band(fc.PlanningQuantile)
	on := func(i int) string {
		return fmt.Sprintf("on the nodes of %s that stay while %s are drained: %s %.1f%% ×%.2f = %.1f%%",
			fc.Locality, rest[i].nodes, policies.QuantileName(fc.PlanningQuantile), band[i], rest[i].factor, band[i]*rest[i].factor)
	}
	switch at := h.Step - 1; {
	case band == nil:
	case at >= 0 && at < len(rest) && rest[at].factor > 1:
		hs.Detail = on(at) + fmt.Sprintf(" over the %.4g%% line", fc.Line)
	case peakAt >= 0 && rest[peakAt].factor > 1:
		// Crossed before the window, peaking inside it: the same words
		// as a crossing's, which the dashboard writes after "It is".
		hs.Detail = on(peakAt) + " at its peak"
	}
	return hs
}

// restStep is how a hotspot reads one step of a forecast: its quantiles
// ×factor, the load of the nodes that stay while the drains of nodes (the
// globs, joined) run.
type restStep struct {
	factor float64
	nodes  string
}

// onRest is, for each step of fc, how its hotspot reads it: inside the
// windows of drains of some of the locality's nodes (its events with Nodes
// and no From), on the nodes no such drain's glob matches, ×all ÷ rest of
// its ready capacity as nodes lists it now (restOf); ×1 elsewhere. nil
// when no step is read so (no such drain, no node list, or its drained
// nodes down).
func onRest(fc *Forecast, nodes []Node) []restStep {
	var drains []Event
	for _, e := range fc.Events {
		if e.Kind == EventDrain && e.Nodes != "" && e.From == (policies.Locality{}) {
			drains = append(drains, e)
		}
	}
	if len(drains) == 0 || nodes == nil {
		return nil
	}
	out := make([]restStep, len(fc.Times))
	factors := map[string]float64{}
	read := false
	for i, at := range fc.Times {
		out[i].factor = 1
		var globs []string
		for _, e := range drains {
			if !at.Before(e.Start) && at.Before(e.End) && !slices.Contains(globs, e.Nodes) {
				globs = append(globs, e.Nodes)
			}
		}
		if len(globs) == 0 {
			continue
		}
		key := strings.Join(globs, ", ")
		f, ok := factors[key]
		if !ok {
			f = restOf(nodes, fc.Locality, globs, fc.Metric).factor()
			factors[key] = f
		}
		if f > 1 {
			out[i], read = restStep{factor: f, nodes: key}, true
		}
	}
	if !read {
		return nil
	}
	return out
}

// Describe summarises the result for logs.
func (r Result) Describe() string {
	return fmt.Sprintf("%d forecasts, %d hotspots, %d anomalies, %d pending", len(r.Forecasts), len(r.Hotspots), len(r.Anomalies), len(r.Pending))
}
