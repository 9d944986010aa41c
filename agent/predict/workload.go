package predict

import (
	"math"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
)

// Workload characterisation reads each locality's recent history on a
// coarse grid and is redone only when enough new data has arrived: the
// shape of a week of demand does not change from one minute to the next.
const (
	// workloadStep is the grid the characterisation reads: coarse enough
	// to read two weeks cheaply, fine enough for daily seasons.
	workloadStep = 5 * time.Minute
	// workloadSpan is how far back it reads (the 5-minute tier's reach).
	workloadSpan = 14 * 24 * time.Hour
	// workloadEvery is how much data time passes between two
	// characterisations of a locality.
	workloadEvery = time.Hour
	// workloadMinPoints is the least history characterised: two hours,
	// the spike detector's window on each side.
	workloadMinPoints = 24
)

// workloads keeps each locality's characterisation between cycles.
type workloads struct {
	byLocality map[policies.Locality]*Workload
	at         map[policies.Locality]time.Time // data time of the last characterisation
}

func newWorkloads() *workloads {
	return &workloads{byLocality: map[policies.Locality]*Workload{}, at: map[policies.Locality]time.Time{}}
}

// of returns the locality's characterisation at now, redone when it is
// missing or an hour of data time old; nil while the locality has too
// little history.
func (w *workloads) of(store Store, loc policies.Locality, now time.Time) *Workload {
	if last, ok := w.at[loc]; ok && now.Sub(last) < workloadEvery && !now.Before(last) {
		return w.byLocality[loc]
	}
	w.at[loc] = now
	w.byLocality[loc] = characterise(store, loc, now)
	return w.byLocality[loc]
}

// forget drops the localities not in keep (policies removed on reload).
func (w *workloads) forget(keep map[policies.Locality]bool) {
	for l := range w.byLocality {
		if !keep[l] {
			delete(w.byLocality, l)
			delete(w.at, l)
		}
	}
}

// characterise reads the locality's CPU and memory (and disk reads and
// writes, when collected) over the last two weeks at five minutes and
// characterises them; nil with fewer than two hours of CPU history.
func characterise(store Store, loc policies.Locality, now time.Time) *Workload {
	read := func(metric string) ([]float64, time.Time) {
		end := now.Truncate(workloadStep).Add(workloadStep)
		g, err := store.Range(state.Key{Locality: loc.String(), Metric: metric}, workloadStep, end.Add(-workloadSpan), end)
		if err != nil {
			return nil, time.Time{}
		}
		first := 0
		for first < len(g.Mean) && math.IsNaN(g.Mean[first]) {
			first++
		}
		return g.Mean[first:], g.Time(first)
	}
	cpu, from := read(source.CPUPercent)
	n := 0
	for _, v := range cpu {
		if !math.IsNaN(v) {
			n++
		}
	}
	if n < workloadMinPoints {
		return nil
	}
	mem, _ := read(source.MemoryPercent)
	shape := forecast.Characterise(cpu, workloadStep)
	w := &Workload{
		Kind: shape.Kind, SeasonalStrength: shape.SeasonalStrength, Spikiness: shape.Spikiness,
		Bound: forecast.ClassifyBound(cpu, mem), From: from, Points: n,
	}
	if r, _ := read(source.IOPSRead); hasValues(r) {
		if wr, _ := read(source.IOPSWrite); hasValues(wr) {
			w.IO = forecast.ClassifyIO(r, wr)
		}
	}
	return w
}

func hasValues(y []float64) bool {
	for _, v := range y {
		if !math.IsNaN(v) {
			return true
		}
	}
	return false
}
