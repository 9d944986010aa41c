package agent

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
)

// GroupStore is what GroupForecasts reads: the series store.
type GroupStore interface {
	Keys() []state.Key
	Range(key state.Key, step time.Duration, from, to time.Time) (state.Grid, error)
}

// groupScope is the locality prefix of the Nomad source's per task group
// series.
const groupScope = "group/"

// recentLevel is the span of recent use a group's forecast falls back on
// where the store holds no earlier day at the same time of day.
const recentLevel = time.Hour

// GroupForecasts forecasts, for the policies that spread by use
// (migrate.spread_by_use), each task group's use per running allocation, from the Nomad source's
// allocation stats ("group/<namespace>/<job>/<group>" series: cpu_mhz and
// memory_mb over allocs), so that the planner reads a node's demand as the
// sum of its allocations' own (shape.Forecast.Group). At each step over the
// longest horizon of those policies (at the finest step), the highest of
// their planning quantiles of the group's use per allocation at the same
// time of day on each earlier day the store holds within their longest
// history; where it holds no such day, the same quantile of its use over
// the last hour. A group with neither gets none: the planner then reads
// what its allocations hold. It returns nil when no policy spreads by use.
func GroupForecasts(store GroupStore, now time.Time, pols []*policies.Policy) []shape.Forecast {
	var step, horizon, history time.Duration
	var q float64
	for _, p := range pols {
		if !p.Migrate.Spread || !p.Migrate.SpreadByUse {
			continue
		}
		if step == 0 || p.Forecast.Step < step {
			step = p.Forecast.Step
		}
		horizon, history = max(horizon, p.Forecast.Horizon), max(history, p.Forecast.History)
		q = max(q, p.Forecast.Quantile)
	}
	if step <= 0 || horizon <= 0 {
		return nil
	}
	history = max(history, recentLevel)
	base := now.Truncate(step)
	times := make([]time.Time, 0, int(horizon/step)+1)
	for t := base; !t.After(base.Add(horizon)); t = t.Add(step) {
		times = append(times, t)
	}
	from, to := base.Add(-history), base.Add(step)
	var out []shape.Forecast
	for _, k := range store.Keys() {
		if k.Metric != source.Allocs || !strings.HasPrefix(k.Locality, groupScope) {
			continue
		}
		count, err := store.Range(k, step, from, to)
		if err != nil {
			continue
		}
		for _, m := range []struct{ series, metric string }{{source.CPUMHz, "cpu"}, {source.MemoryMB, "memory"}} {
			sum, err := store.Range(state.Key{Locality: k.Locality, Metric: m.series}, step, from, to)
			if err != nil || !sum.Start.Equal(count.Start) {
				continue
			}
			perAlloc := make([]float64, min(len(sum.Mean), len(count.Mean)))
			for i := range perAlloc {
				perAlloc[i] = math.NaN()
				if n := count.Mean[i]; n >= 1 && !math.IsNaN(sum.Mean[i]) {
					perAlloc[i] = sum.Mean[i] / n
				}
			}
			if v, ok := groupForecast(perAlloc, sum.Start, step, times, now, q); ok {
				out = append(out, shape.Forecast{Group: strings.TrimPrefix(k.Locality, groupScope), Metric: m.metric,
					Times: times, Planning: v, Quantile: q})
			}
		}
	}
	return out
}

// groupForecast is the quantile q of a group's use per allocation (on a
// grid from start at step; NaN where unknown) at each of times: across the
// same time of day on earlier days, or else across the last recentLevel
// before now. ok is false when some time has neither.
func groupForecast(perAlloc []float64, start time.Time, step time.Duration, times []time.Time, now time.Time, q float64) ([]float64, bool) {
	at := func(t time.Time) float64 {
		i := int(t.Sub(start) / step)
		if t.Before(start) || i >= len(perAlloc) {
			return math.NaN()
		}
		return perAlloc[i]
	}
	var recent []float64
	for t := now.Add(-recentLevel); !t.After(now); t = t.Add(step) {
		if v := at(t); !math.IsNaN(v) {
			recent = append(recent, v)
		}
	}
	level := quantile(recent, q)
	out := make([]float64, len(times))
	var days []float64
	for i, t := range times {
		days = days[:0]
		for d := t.Add(-24 * time.Hour); !d.Before(start); d = d.Add(-24 * time.Hour) {
			if d.After(now) {
				continue
			}
			if v := at(d); !math.IsNaN(v) {
				days = append(days, v)
			}
		}
		v := quantile(days, q)
		if math.IsNaN(v) {
			v = level
		}
		if math.IsNaN(v) {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// quantile is the q-quantile of vs by linear interpolation between order
// statistics, NaN for none. It sorts vs.
func quantile(vs []float64, q float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	slices.Sort(vs)
	x := q * float64(len(vs)-1)
	i := int(x)
	if i+1 >= len(vs) {
		return vs[len(vs)-1]
	}
	return vs[i] + float64((x-float64(i))*(vs[i+1]-vs[i]))
}
