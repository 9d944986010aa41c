package predict

import (
	"fmt"
	"math"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
)

// applySchedules applies the policy's scheduled events that fall inside the
// horizon to the forecast, as known future changes, and describes them.
//
// A "peak" multiplies every band inside its window by the policy's factor,
// or, without one, by the ratio that past occurrences of the same schedule
// showed in the history (mean inside the window over the mean of the
// equally long stretch before it); with neither it lifts the window to the
// highest value seen.
//
// A "drain" of the policy's own locality empties it: inside the window its
// demand is forecast as zero, since the allocations leave with the drained
// capacity — unless the drain names some of its nodes (nodes = "glob"):
// their work then moves to the rest of the locality and its demand stays.
// A drain of another locality sends that locality's demand here:
// inside the window its latest absolute use (MHz or MB, read through moved)
// is added, as a percent of this locality's capacity.
func applySchedules(fc *Forecast, pol *policies.Policy, y []float64, start time.Time, step time.Duration, moved movedDemand) []Event {
	if len(fc.Times) == 0 {
		return nil
	}
	var events []Event
	hStart, hEnd := fc.Times[0], fc.Times[len(fc.Times)-1].Add(step)
	for _, s := range pol.Schedules {
		windows := s.Windows(hStart, hEnd)
		if len(windows) == 0 {
			continue
		}
		switch s.Action {
		case policies.ActionPeak:
			if !affects(s, pol) {
				continue
			}
			factor, how := peakFactor(s, y, start, step)
			for _, w := range windows {
				inWindow(fc, w, func(i int) { lift(fc, i, factor) })
				events = append(events, Event{Kind: EventPeak, Schedule: s.Name, Start: w.Start, End: w.End, Factor: factor, Known: true, Detail: how})
			}
		case policies.ActionDrain:
			for _, l := range s.Localities {
				if l == pol.Locality && s.Nodes != "" {
					// Some of the locality's nodes go down: their work moves
					// to the rest of it, so its demand stays.
					for _, w := range windows {
						events = append(events, Event{Kind: EventDrain, Schedule: s.Name, Start: w.Start, End: w.End, Known: true,
							Detail: fmt.Sprintf("nodes %s go down; their work moves to the rest of the locality, whose demand stays", s.Nodes)})
					}
					continue
				}
				if l == pol.Locality {
					for _, w := range windows {
						inWindow(fc, w, func(i int) { scale(fc, i, 0) })
						events = append(events, Event{Kind: EventDrain, Schedule: s.Name, Start: w.Start, End: w.End, Known: true,
							Detail: "the locality is emptied; its demand leaves with its capacity"})
					}
					continue
				}
				add, ok := moved(l, fc.Metric)
				for _, w := range windows {
					e := Event{Kind: EventDrain, Schedule: s.Name, From: l, Start: w.Start, End: w.End}
					if !ok {
						e.Detail = "its demand is unknown (no recent samples); not added"
						events = append(events, e)
						continue
					}
					inWindow(fc, w, func(i int) { shift(fc, i, add) })
					e.Added, e.Known, e.Detail = add, true, fmt.Sprintf("its demand (+%.1f) moves here", add)
					events = append(events, e)
				}
			}
		}
	}
	return events
}

// movedDemand returns, for a drained locality and a percent metric, its
// latest absolute use as a percent of the receiving locality's capacity.
type movedDemand func(from policies.Locality, metric string) (float64, bool)

// movedFrom builds the movedDemand of the locality `to` from the store's
// latest points at now: to's capacity is its absolute use over its percent
// use. A stale series (marked, or without a sample for StaleSteps steps)
// is unknown: an old value must not pass for the demand that moves.
func movedFrom(store Store, to policies.Locality, now time.Time) movedDemand {
	latest := func(key state.Key) (state.Point, bool) {
		info, ok := store.Info(key)
		if !ok || info.LastSample.IsZero() || stale(info, now, time.Minute) != "" {
			return state.Point{}, false
		}
		return store.Latest(key)
	}
	return func(from policies.Locality, metric string) (float64, bool) {
		abs := map[string]string{source.CPUPercent: source.CPUMHz, source.MemoryPercent: source.MemoryMB}[metric]
		if abs == "" {
			return 0, false
		}
		fromAbs, ok1 := latest(state.Key{Locality: from.String(), Metric: abs})
		toAbs, ok2 := latest(state.Key{Locality: to.String(), Metric: abs})
		toPct, ok3 := latest(state.Key{Locality: to.String(), Metric: metric})
		if !ok1 || !ok2 || !ok3 || toPct.Mean <= 0 || toAbs.Mean <= 0 {
			return 0, false
		}
		capacity := toAbs.Mean / (toPct.Mean / 100)
		return 100 * fromAbs.Mean / capacity, true
	}
}

func inWindow(fc *Forecast, w policies.Window, f func(i int)) {
	for i, at := range fc.Times {
		if !at.Before(w.Start) && at.Before(w.End) {
			f(i)
		}
	}
}

// scale multiplies step i of every band and the mean by k.
func scale(fc *Forecast, i int, k float64) {
	fc.Mean[i] *= k
	for q := range fc.Bands {
		fc.Bands[q][i] *= k
	}
}

// shift adds d to step i of every band and the mean.
func shift(fc *Forecast, i int, d float64) {
	fc.Mean[i] += d
	for q := range fc.Bands {
		fc.Bands[q][i] += d
	}
}

func affects(s policies.Schedule, pol *policies.Policy) bool {
	if len(s.Localities) == 0 {
		return true
	}
	for _, l := range s.Localities {
		if l == pol.Locality {
			return true
		}
	}
	return false
}

// peakFactor is the policy's factor for a peak, or else an estimate of how
// much the recurring peak lifted demand in its past occurrences in y;
// factor 0 means "lift to the highest value seen".
func peakFactor(s policies.Schedule, y []float64, start time.Time, step time.Duration) (float64, string) {
	if s.Factor > 0 {
		return s.Factor, fmt.Sprintf("×%.2f, as the policy declares", s.Factor)
	}
	end := start.Add(time.Duration(len(y)) * step)
	var in, before float64
	var nIn, nBefore int
	for _, w := range s.Windows(start, end) {
		if !w.End.Before(end) {
			continue // still running: not a complete past occurrence
		}
		d := w.End.Sub(w.Start)
		for i, v := range y {
			at := start.Add(time.Duration(i) * step)
			if math.IsNaN(v) {
				continue
			}
			switch {
			case !at.Before(w.Start) && at.Before(w.End):
				in += v
				nIn++
			case !at.Before(w.Start.Add(-d)) && at.Before(w.Start):
				before += v
				nBefore++
			}
		}
	}
	if nIn > 0 && nBefore > 0 && before > 0 {
		f := (in / float64(nIn)) / (before / float64(nBefore))
		if f < 1 {
			f = 1
		}
		return f, fmt.Sprintf("lifted ×%.2f, as past occurrences were", f)
	}
	return 0, "no past occurrence in the history; lifted to the highest value seen"
}

// lift raises step i of every band (and the mean) by factor, or to the
// history's highest value when factor is 0.
func lift(fc *Forecast, i int, factor float64) {
	if factor != 0 {
		scale(fc, i, factor)
		return
	}
	peak := math.Inf(-1)
	for _, p := range fc.History {
		peak = math.Max(peak, p.Value)
	}
	if !math.IsInf(peak, -1) {
		shift(fc, i, math.Max(0, peak-fc.Mean[i]))
	}
}
