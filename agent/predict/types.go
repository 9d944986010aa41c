package predict

import (
	"fmt"
	"math"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// These are the forecast loop's results, in the domain's own terms (typed
// durations, localities and events): what the planner reads. The HTTP API
// maps them to its JSON; nothing here knows about HTTP.

// Forecast is the forecast of one metric of one locality under one policy:
// quantile bands over the policy's horizon, with the model that made them
// and why, after the policy's scheduled events were applied.
type Forecast struct {
	Policy   string
	Locality policies.Locality
	Metric   string
	// Origin is the time of the last observation used.
	Origin time.Time
	Step   time.Duration
	Model  string
	Reason string
	// Times[i] is Origin + (i+1)·Step; Mean[i] and every Bands[q][i] are
	// the forecast for the step that ends at Times[i].
	Times []time.Time
	Mean  []float64
	// Quantiles are the levels of Bands, ascending; the planning quantile
	// is always one of them.
	Quantiles        []float64
	Bands            [][]float64
	PlanningQuantile float64
	// Line is the value the planning quantile must stay under (100 minus
	// the policy's headroom, for percent metrics); HasLine is false for a
	// metric without a capacity (IOPS, the policy's own queries).
	Line    float64
	HasLine bool
	// Events are the policy's scheduled events applied to this forecast.
	Events []Event
	// History is the recent past the forecast starts from.
	History []Point
	Hotspot *Hotspot
	// Workload characterises the locality's demand; nil until it has been
	// characterised (see Workload).
	Workload *Workload
	// Demand is the forecast of the absolute use behind a CPU or memory
	// percent, for policies with a scale block; nil for other policies and
	// metrics, and while that use is not known up to Origin.
	Demand *Demand
	// DrainAdded is, step for step, what the drains of other localities
	// added to the mean and every band (their events' Added is its most
	// over a window), as a later peak scaled it (a peak's clamp into the
	// metric's range is not taken off it); nil when they added
	// nothing (none declared, or their demand unknown). The planner reads
	// the forecast less it: the drained work comes here only as it sends
	// the moves here, and it counts each move where it goes.
	DrainAdded []float64
}

// Demand forecasts the absolute use behind a CPU or memory percent
// forecast (MHz behind cpu, MB behind memory) from its own history, on the
// same steps and quantiles, with the same scheduled events applied. A
// percent forecast repeats shares of the capacity its history was measured
// against: after a scale-out, a seasonal model forecasts yesterday's 80% of
// the old capacity as 80% of the new. Demand over the capacity now does
// not.
type Demand struct {
	// Metric is source.CPUMHz or source.MemoryMB.
	Metric string
	Mean   []float64
	// Bands are at the forecast's Quantiles.
	Bands [][]float64
	// DrainAdded is the forecast's DrainAdded in Metric's unit.
	DrainAdded []float64
}

// DemandBand returns the demand band of quantile q, or nil when the
// forecast has no demand or q is not one of its quantiles.
func (f *Forecast) DemandBand(q float64) []float64 {
	if f.Demand == nil {
		return nil
	}
	for i, l := range f.Quantiles {
		if math.Abs(l-q) < 1e-9 && i < len(f.Demand.Bands) {
			return f.Demand.Bands[i]
		}
	}
	return nil
}

// Key returns the forecast series' key ("dc1/web:cpu").
func (f *Forecast) Key() state.Key {
	return state.Key{Locality: f.Locality.String(), Metric: f.Metric}
}

// Band returns the band of quantile q, or nil when q is not one of the
// forecast's quantiles.
func (f *Forecast) Band(q float64) []float64 {
	for i, l := range f.Quantiles {
		if math.Abs(l-q) < 1e-9 {
			return f.Bands[i]
		}
	}
	return nil
}

// Peak returns the highest value quantile q takes over the steps that
// overlap [from, to), and false when q is not a band or no step overlaps.
func (f *Forecast) Peak(q float64, from, to time.Time) (float64, bool) {
	band := f.Band(q)
	if band == nil {
		return 0, false
	}
	peak, ok := math.Inf(-1), false
	for i, end := range f.Times {
		if start := end.Add(-f.Step); end.After(from) && start.Before(to) {
			peak, ok = math.Max(peak, band[i]), true
		}
	}
	return peak, ok
}

// EventKind is what a scheduled event did to a forecast.
type EventKind string

// Event kinds.
const (
	// EventPeak multiplied the window by a factor (or lifted it to the
	// highest value seen).
	EventPeak EventKind = "peak"
	// EventDrain emptied the locality (its own drain), said what a
	// drain of some of its nodes leaves the rest of it (Nodes; its
	// hotspots read it so) or added the demand of a drained locality
	// (From).
	EventDrain EventKind = "drain"
)

// Event is one window of a policy's schedule applied to a forecast.
type Event struct {
	Kind     EventKind
	Schedule string
	// From is the drained locality whose demand moves here (a drain of
	// some of its nodes, Nodes, adds nothing: their work goes elsewhere
	// first); zero for a peak or a drain of the forecast's own locality.
	From       policies.Locality
	Start, End time.Time
	// Factor is a peak's lift over the demand without it: declared,
	// learned from past occurrences or, once the window has shown its
	// level, the one the history shows (0: lifted to the highest value
	// seen). For a drain of some of the locality's nodes (Nodes) it is
	// the load of the nodes that stay over the locality's percent, as the
	// node list shows them now (all ÷ rest of its ready nodes' capacity;
	// 1 once the drained nodes are down, out of the base): its hotspots
	// read the window's steps so (findHotspot); the forecast is left as
	// the model made it.
	// Added is what a drain of another locality added, in the forecast's
	// unit. Neither counts what the model's forecast already carried of
	// a window under way (Detail says how much that was); Known is false
	// when the drained demand was unknown and nothing was added.
	Factor float64
	Added  float64
	Known  bool
	// Nodes is the glob of a drain of some of a locality's nodes
	// (schedule nodes); "" for other events.
	Nodes string
	// Detail says what was applied and why, for operators.
	Detail string
	// share is, for a drain of all of another locality that adds its
	// demand here, the share of it added: less than 1 where it did not
	// all fit under the line (homeRoom).
	share float64
}

// Node is a node of the cluster as the collector measures its
// localities: a locality's CPU and memory are percents of the allocatable
// capacity of its ready nodes, whatever their scheduling eligibility (a
// node drained or made ineligible stays in that base while it is up). A
// drain of some of a locality's nodes reads their share of it here.
type Node struct {
	Name                            string
	Datacenter, NodePool, NodeClass string
	// Ready is Nomad's status "ready".
	Ready bool
	// CPUMHz and MemoryMB are its allocatable capacity (its resources
	// less what it reserves).
	CPUMHz, MemoryMB float64
}

// String describes the event as operators read it:
// `peak "surge" 2026-01-05T09:00:00Z–2026-01-05T11:00:00Z: ×2.00, as the policy declares`.
func (e Event) String() string {
	of := ""
	if e.From != (policies.Locality{}) {
		of = " of " + e.From.String()
	}
	return fmt.Sprintf("%s %q%s %s–%s: %s", e.Kind, e.Schedule, of,
		e.Start.Format(time.RFC3339), e.End.Format(time.RFC3339), e.Detail)
}

// Hotspot is a locality whose planning quantile crosses its headroom line
// within the horizon.
type Hotspot struct {
	Policy   string
	Locality policies.Locality
	Metric   string
	// At is the first step at which the planning quantile crosses Line.
	At time.Time
	// Probability is that of demand crossing the line within the horizon.
	Probability float64
	Quantile    float64
	Line        float64
	// Peak is the planning quantile's highest value over the horizon,
	// as the hotspot reads it (inside a drain of some of the locality's
	// nodes, on the nodes that stay: Detail).
	Peak float64
	// Detected is the data time of the cycle that found it.
	Detected time.Time
	// Detail says, for a hotspot read on the nodes of the locality that
	// stay while a drain of some of them runs, what was read: "on the
	// nodes of dc1/*/web that stay while dc1-rack-a-* are drained: p90
	// 48.0% ×2.00 = 96.0% over the 75% line"; empty otherwise.
	Detail string
}

// AnomalyKind is the shape of an anomalous stretch.
type AnomalyKind string

// Anomaly kinds.
const (
	// Spike: a short deviation, kept out of the model.
	Spike AnomalyKind = "spike"
	// LevelShift: a lasting change, the series' new level.
	LevelShift AnomalyKind = "level_shift"
)

// Anomaly is a detected anomalous stretch of one series.
type Anomaly struct {
	Series     state.Key
	Kind       AnomalyKind
	Start, End time.Time
	// Score is the highest anomaly score of its points (0 to 1), P the
	// smallest p-value: how rare the stretch is on this series. Alarm is
	// the detector's score where it raised an alarm (0: it raised none).
	Score, P, Alarm float64
}

// Point is one (time, value) pair of a series.
type Point struct {
	Time  time.Time
	Value float64
}

// Workload characterises a locality's demand from its recent history: its
// shape (forecast.Characterise on its CPU), whether CPU or memory binds it
// (forecast.ClassifyBound), and whether its disks are read- or write-heavy
// (forecast.ClassifyIO, when reads and writes are collected apart).
type Workload struct {
	Kind             forecast.WorkloadKind
	SeasonalStrength float64
	Spikiness        float64
	Bound            forecast.Bias
	// IO is empty when the locality's reads and writes are not collected.
	IO forecast.Bias
	// From and Points say what the characterisation saw.
	From   time.Time
	Points int
}

// PendingState says why a policy's series has no forecast.
type PendingState string

// Pending states.
const (
	// NoData: the store holds no sample of the series yet.
	NoData PendingState = "no_data"
	// WarmingUp: fewer than MinPoints points so far.
	WarmingUp PendingState = "warming_up"
	// Stale: the series could not be refreshed; its forecast is withdrawn.
	Stale PendingState = "stale"
	// Failed: reading, fitting or forecasting the series failed.
	Failed PendingState = "failed"
)

// Pending is a policy's series that was not forecast this cycle, and why.
type Pending struct {
	Policy   string
	Locality policies.Locality
	Metric   string
	State    PendingState
	Reason   string
	// Points and Needed count the history while warming up; FirstAt is
	// the data time at which the first forecast is due.
	Points  int
	Needed  int
	FirstAt time.Time
}

// Key returns the pending series' key.
func (p Pending) Key() state.Key {
	return state.Key{Locality: p.Locality.String(), Metric: p.Metric}
}
