package predict

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/policies"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func policy(t *testing.T, extra string, apply func(*policies.Policy)) *policies.Policy {
	t.Helper()
	src := fmt.Sprintf(`
shaping "web" {
  locality {
    datacenter = "dc1"
    node_pool  = "web"
  }
  forecast {
    model   = "ets"
    horizon = "1h"
    step    = "5m"
    history = "3d"
    quantile = 0.9
  }
  headroom {
    cpu    = 20
    memory = 20
  }
  %s
}`, extra)
	ps, diags := policies.Parse("test.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if apply != nil {
		apply(ps[0])
	}
	return ps[0]
}

// fill appends n 5-minute points of f(i) to key, starting at from.
func fill(t *testing.T, s *state.Store, key state.Key, from time.Time, n int, f func(i int) float64) {
	t.Helper()
	var batch []state.Sample
	for i := 0; i < n; i++ {
		batch = append(batch, state.Sample{Key: key, Time: from.Add(time.Duration(i) * 5 * time.Minute), Value: f(i)})
	}
	if _, _, err := s.Append(5*time.Minute, batch); err != nil {
		t.Fatal(err)
	}
}

func newStore(t *testing.T) *state.Store {
	s, err := state.NewStore(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var cpu = state.Key{Locality: "dc1/web", Metric: "cpu"}

func daily(level, amp float64) func(int) float64 {
	return func(i int) float64 { return level + amp*math.Sin(2*math.Pi*float64(i)/288) }
}

func TestSkipsWithoutData(t *testing.T) {
	p := New(nil)
	res := p.RunOnce(t0, newStore(t), []*policies.Policy{policy(t, "", nil)})
	if len(res.Forecasts) != 0 || len(res.Pending) != len(Metrics) {
		t.Fatalf("result = %+v", res)
	}
	if !strings.Contains(res.Pending[0].Reason, "no samples") {
		t.Errorf("reason = %q", res.Pending[0].Reason)
	}
}

func TestWarmingUp(t *testing.T) {
	s := newStore(t)
	fill(t, s, cpu, t0, 5, daily(50, 0))
	res := New(nil).RunOnce(t0.Add(25*time.Minute), s, []*policies.Policy{policy(t, "", nil)})
	found := false
	for _, sk := range res.Pending {
		if sk.Key() != cpu {
			continue
		}
		found = true
		// Five points up to 00:20; the twelfth is due at 00:55.
		first := t0.Add(55 * time.Minute)
		want := "warming up: 5 of 12 points, first forecast at " + first.Format(time.RFC3339)
		if sk.State != WarmingUp || sk.Points != 5 || sk.Needed != 12 || !sk.FirstAt.Equal(first) || sk.Reason != want {
			t.Errorf("pending = %+v, want %q", sk, want)
		}
	}
	if !found {
		t.Errorf("dc1/web:cpu not pending: %+v", res.Pending)
	}
}

func TestForecastAndHotspot(t *testing.T) {
	s := newStore(t)
	n := 2 * 288
	fill(t, s, cpu, t0, n, daily(60, 15))
	now := t0.Add(time.Duration(n-1) * 5 * time.Minute)
	pol := policy(t, "", nil)
	res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
	if len(res.Forecasts) != 1 {
		t.Fatalf("forecasts = %d (skipped %+v)", len(res.Forecasts), res.Pending)
	}
	fc := res.Forecasts[0]
	if len(fc.Times) != 12 || len(fc.Mean) != 12 || !fc.Origin.Equal(now) || !fc.Times[0].Equal(now.Add(5*time.Minute)) {
		t.Fatalf("grid: origin %v, times %v", fc.Origin, fc.Times)
	}
	if fc.Model == "" || !fc.HasLine || fc.Line != 80 {
		t.Errorf("model %q line %v (%v)", fc.Model, fc.Line, fc.HasLine)
	}
	for q := 1; q < len(fc.Quantiles); q++ {
		for i := range fc.Times {
			if fc.Bands[q][i] < fc.Bands[q-1][i]-1e-9 {
				t.Fatalf("bands cross at step %d", i)
			}
		}
	}
	// The series swings between 45 and 75 %: a 50 % line is crossed within
	// the hour, a 99 % line is not.
	hot := policy(t, "", func(p *policies.Policy) { p.Headroom.CPU = 50 })
	res = New(nil).RunOnce(now, s, []*policies.Policy{hot})
	if len(res.Hotspots) != 1 {
		t.Fatalf("hotspots = %+v, want one at a 50%% line", res.Hotspots)
	}
	h := res.Hotspots[0]
	if h.Line != 50 || h.Probability < 0.5 || h.At.Before(now) || h.Metric != "cpu" {
		t.Errorf("hotspot = %+v", h)
	}
	cold := policy(t, "", func(p *policies.Policy) { p.Headroom.CPU = 1 })
	if res := New(nil).RunOnce(now, s, []*policies.Policy{cold}); len(res.Hotspots) != 0 {
		t.Errorf("hotspot at a 99%% line: %+v", res.Hotspots)
	}
}

func TestIncrementalUpdate(t *testing.T) {
	s := newStore(t)
	fill(t, s, cpu, t0, 288, daily(50, 10))
	pol := policy(t, "", nil)
	p := New(nil)
	now := t0.Add(287 * 5 * time.Minute)
	if res := p.RunOnce(now, s, []*policies.Policy{pol}); len(res.Forecasts) != 1 {
		t.Fatalf("first cycle: %+v", res.Pending)
	}
	fill(t, s, cpu, t0.Add(288*5*time.Minute), 3, func(i int) float64 { return daily(50, 10)(288 + i) })
	now = now.Add(15 * time.Minute)
	res := p.RunOnce(now, s, []*policies.Policy{pol})
	if len(res.Forecasts) != 1 || !res.Forecasts[0].Origin.Equal(now) {
		t.Fatalf("second cycle: %+v", res)
	}
	tr := p.models[modelKey{"web", "dc1/web:cpu"}]
	if tr.p.Absorbed() != 3 {
		t.Errorf("absorbed = %d, want 3 points through Update", tr.p.Absorbed())
	}
}

func TestStaleSeriesExcluded(t *testing.T) {
	s := newStore(t)
	fill(t, s, cpu, t0, 100, daily(50, 10))
	s.MarkStale([]state.Key{cpu}, t0.Add(500*time.Minute), "node n3 stats unreachable")
	res := New(nil).RunOnce(t0.Add(500*time.Minute), s, []*policies.Policy{policy(t, "", nil)})
	if len(res.Forecasts) != 0 {
		t.Fatal("a stale series was forecast")
	}
	if !strings.Contains(res.Pending[0].Reason, "stale") || !strings.Contains(res.Pending[0].Reason, "n3") {
		t.Errorf("reason = %q", res.Pending[0].Reason)
	}
}

func TestScheduledPeakLiftsWindow(t *testing.T) {
	s := newStore(t)
	// Three days at 40 %, with a 10:00–11:00 daily peak at 70 %.
	n := 3 * 288
	f := func(i int) float64 {
		h := (i % 288) / 12
		if h == 10 {
			return 70
		}
		return 40
	}
	fill(t, s, cpu, t0, n, f)
	// Now is 09:30 on day 4 (the series ends just before).
	fill(t, s, cpu, t0.Add(time.Duration(n)*5*time.Minute), 114, func(i int) float64 { return 40 })
	now := t0.Add(time.Duration(n+113) * 5 * time.Minute)
	pol := policy(t, `schedule "morning" {
    cron     = "0 10 * * *"
    duration = "1h"
    action   = "peak"
  }`, func(p *policies.Policy) { p.Headroom.CPU = 40 })
	res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
	if len(res.Forecasts) == 0 {
		t.Fatalf("no forecast: %+v", res.Pending)
	}
	fc := res.Forecasts[0]
	if len(fc.Events) != 1 || !strings.Contains(fc.Events[0].String(), "morning") {
		t.Fatalf("events = %v", fc.Events)
	}
	inWindow, before := fc.Mean[len(fc.Mean)-1], fc.Mean[0]
	if inWindow < 1.5*before {
		t.Errorf("mean in the peak window %.1f is not lifted above %.1f", inWindow, before)
	}
	if len(res.Hotspots) != 1 || res.Hotspots[0].At.Hour() != 10 {
		t.Errorf("hotspots = %+v, want one at 10:00 (before the peak starts)", res.Hotspots)
	}
}

func TestLevelShiftIsLearned(t *testing.T) {
	s := newStore(t)
	fill(t, s, cpu, t0, 120, func(i int) float64 {
		if i < 90 {
			return 33.4 + 0.1*float64(i%5)
		}
		return 24.1 + 0.1*float64(i%4)
	})
	now := t0.Add(119 * 5 * time.Minute)
	res := New(nil).RunOnce(now, s, []*policies.Policy{policy(t, "", nil)})
	if len(res.Forecasts) != 1 {
		t.Fatalf("skipped: %+v", res.Pending)
	}
	if m := res.Forecasts[0].Mean[0]; math.Abs(m-24.2) > 2 {
		t.Errorf("first step %.1f after a shift from 33.5 to 24.2: the new level was not learned", m)
	}
}

func TestDeclaredPeakFactor(t *testing.T) {
	s := newStore(t)
	fill(t, s, cpu, t0, 100, func(int) float64 { return 40 })
	now := t0.Add(99 * 5 * time.Minute) // 08:15
	pol := policy(t, `schedule "launch" {
    cron     = "0 9 * * *"
    duration = "1h"
    action   = "peak"
    factor   = 2
  }`, func(p *policies.Policy) { p.Headroom.CPU = 25 })
	res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
	if len(res.Forecasts) == 0 {
		t.Fatalf("skipped: %+v", res.Pending)
	}
	fc := res.Forecasts[0]
	for i, at := range fc.Times {
		in := at.Hour() == 9
		if in && math.Abs(fc.Mean[i]-80) > 1 || !in && math.Abs(fc.Mean[i]-40) > 1 {
			t.Fatalf("step %s: mean %.1f", at.Format("15:04"), fc.Mean[i])
		}
	}
	if len(res.Hotspots) != 1 || !res.Hotspots[0].At.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("hotspots = %+v, want one at 09:00", res.Hotspots)
	}
}

func TestDrainSchedules(t *testing.T) {
	s := newStore(t)
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	webMHz := state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}
	rackMHz := state.Key{Locality: "dc1/rack-a", Metric: "cpu_mhz"}
	// dc1/web runs at 40 % of 10,000 MHz; dc1/rack-a uses 1,500 MHz.
	fill(t, s, web, t0, 100, func(int) float64 { return 40 })
	fill(t, s, webMHz, t0, 100, func(int) float64 { return 4000 })
	fill(t, s, rackMHz, t0, 100, func(int) float64 { return 1500 })
	now := t0.Add(99 * 5 * time.Minute) // 08:15

	// Another locality drained into this one: +15 points during 09:00–10:00.
	in := policy(t, `schedule "rack-a" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1/rack-a"]
  }`, nil)
	res := New(nil).RunOnce(now, s, []*policies.Policy{in})
	fc := res.Forecasts[0]
	for i, at := range fc.Times {
		want := 40.0
		if at.Hour() == 9 {
			want = 55
		}
		if math.Abs(fc.Mean[i]-want) > 0.5 {
			t.Fatalf("drain into dc1/web: %s mean %.1f, want %.0f (events %v)", at.Format("15:04"), fc.Mean[i], want, fc.Events)
		}
	}

	// The policy's own locality drained: its demand leaves.
	own := policy(t, `schedule "self" {
    cron     = "0 9 * * *"
    duration = "1h"
    action   = "drain"
  }`, nil)
	res = New(nil).RunOnce(now, s, []*policies.Policy{own})
	fc = res.Forecasts[0]
	for i, at := range fc.Times {
		if at.Hour() == 9 && fc.Mean[i] != 0 {
			t.Fatalf("own drain: %s mean %.1f, want 0", at.Format("15:04"), fc.Mean[i])
		}
	}
	if len(fc.Events) != 1 || !strings.Contains(fc.Events[0].String(), "emptied") {
		t.Errorf("events = %v", fc.Events)
	}
}

func TestPlanningQuantileIsABand(t *testing.T) {
	s := newStore(t)
	fill(t, s, cpu, t0, 288, daily(50, 10))
	pol := policy(t, "", func(p *policies.Policy) { p.Forecast.Quantile = 0.85 })
	res := New(nil).RunOnce(t0.Add(287*5*time.Minute), s, []*policies.Policy{pol})
	if len(res.Forecasts) != 1 || res.Forecasts[0].Band(0.85) == nil {
		t.Fatalf("no 0.85 band: %+v", res.Forecasts)
	}
}

func TestPolicyQueryMetricsAreForecast(t *testing.T) {
	s := newStore(t)
	q := state.Key{Locality: "dc1/web", Metric: "queue_depth"}
	fill(t, s, q, t0, 100, func(i int) float64 { return float64(100 + i%7) })
	pol := policy(t, "", func(p *policies.Policy) { p.Forecast.Queries = map[string]string{"queue_depth": "x"} })
	res := New(nil).RunOnce(t0.Add(99*5*time.Minute), s, []*policies.Policy{pol})
	if len(res.Forecasts) != 1 || res.Forecasts[0].Metric != "queue_depth" || res.Forecasts[0].HasLine {
		t.Fatalf("forecasts = %+v", res.Forecasts)
	}
}

// TestPercentBandsStayWithinRange: a CPU percentage close to its ceiling
// and noisy gets bands that stay within 0–100, what the measurement can
// show; a metric without a ceiling (IOPS) is only kept above 0.
func TestPercentBandsStayWithinRange(t *testing.T) {
	// At any history length: the twelve points of a first forecast, a
	// short history, a day; with auto (which forecasts with the global
	// network on a cold start) and with ETS.
	for _, n := range []int{MinPoints, 30, 288} {
		for _, model := range []string{"auto", "ets"} {
			t.Run(fmt.Sprintf("%s-%d", model, n), func(t *testing.T) {
				s := newStore(t)
				r := rand.New(rand.NewPCG(5, uint64(n)))
				noisy := func(level float64) func(int) float64 {
					return func(int) float64 { return math.Max(0, math.Min(100, level+6*r.NormFloat64())) }
				}
				fill(t, s, cpu, t0, n, noisy(96))
				iops := state.Key{Locality: cpu.Locality, Metric: source.IOPS}
				fill(t, s, iops, t0, n, noisy(3))
				now := t0.Add(time.Duration(n-1) * 5 * time.Minute)
				pol := policy(t, "", func(p *policies.Policy) { p.Forecast.Model = model })
				res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
				if len(res.Forecasts) != 2 {
					t.Fatalf("forecasts %d, skipped %+v", len(res.Forecasts), res.Pending)
				}
				for _, fc := range res.Forecasts {
					hi := 100.0
					if fc.Metric == source.IOPS {
						hi = math.Inf(1)
					}
					for q, band := range fc.Bands {
						for i, v := range band {
							if v < 0 || v > hi {
								t.Fatalf("%s: band %v at step %d is %.1f, outside [0, %v]", fc.Key(), fc.Quantiles[q], i+1, v, hi)
							}
						}
					}
				}
			})
		}
	}
}

func TestSeriesWithoutRecentSamplesIsWithdrawn(t *testing.T) {
	s := newStore(t)
	fill(t, s, cpu, t0, 100, daily(50, 10)) // the last sample at 08:15
	last := t0.Add(99 * 5 * time.Minute)
	pol := policy(t, "", nil)
	p := New(nil)
	if res := p.RunOnce(last.Add(15*time.Minute), s, []*policies.Policy{pol}); len(res.Forecasts) != 1 {
		t.Fatalf("three steps after the last sample: %+v, want a forecast", res.Pending)
	}
	// Every node of the locality stopped reporting: a fourth step without
	// a sample, and the forecast (with its hotspot) is withdrawn, even
	// before the leader marks the series stale.
	res := p.RunOnce(last.Add(20*time.Minute), s, []*policies.Policy{pol})
	if len(res.Forecasts) != 0 || len(res.Hotspots) != 0 {
		t.Fatalf("a series without a sample for four steps was forecast: %+v", res.Forecasts)
	}
	var got *Pending
	for i := range res.Pending {
		if res.Pending[i].Key() == cpu {
			got = &res.Pending[i]
		}
	}
	if got == nil || got.State != Stale || !strings.Contains(got.Reason, "no sample since "+last.Format(time.RFC3339)) {
		t.Errorf("pending = %+v, want stale since the last sample", got)
	}
}

func TestDrainOfAStaleLocalityIsUnknown(t *testing.T) {
	s := newStore(t)
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	webMHz := state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}
	rackMHz := state.Key{Locality: "dc1/rack-a", Metric: "cpu_mhz"}
	fill(t, s, web, t0, 100, func(int) float64 { return 40 })
	fill(t, s, webMHz, t0, 100, func(int) float64 { return 4000 })
	fill(t, s, rackMHz, t0, 100, func(int) float64 { return 1500 })
	now := t0.Add(99 * 5 * time.Minute)
	// Only some of rack-a's nodes answer: its absolute use would be a
	// partial sum, and the leader marked it stale.
	s.MarkStale([]state.Key{rackMHz}, now, "3 of the locality's 4 nodes answered")
	in := policy(t, `schedule "rack-a" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1/rack-a"]
  }`, nil)
	res := New(nil).RunOnce(now, s, []*policies.Policy{in})
	fc := res.Forecasts[0]
	if len(fc.Events) != 1 || fc.Events[0].Known || !strings.Contains(fc.Events[0].String(), "unknown") {
		t.Fatalf("events = %v, want the drained demand unknown", fc.Events)
	}
	for i := range fc.Times {
		if math.Abs(fc.Mean[i]-40) > 0.5 {
			t.Fatalf("step %d: mean %.1f, want 40 (nothing added from a stale series)", i, fc.Mean[i])
		}
	}
}

func TestForecastsCarryTheLocalitysWorkload(t *testing.T) {
	s := newStore(t)
	n := 3 * 288
	fill(t, s, cpu, t0, n, daily(60, 20))
	fill(t, s, state.Key{Locality: "dc1/web", Metric: "memory"}, t0, n, daily(20, 2))
	now := t0.Add(time.Duration(n-1) * 5 * time.Minute)
	res := New(nil).RunOnce(now, s, []*policies.Policy{policy(t, "", nil)})
	if len(res.Forecasts) == 0 {
		t.Fatalf("no forecast: %+v", res.Pending)
	}
	for _, fc := range res.Forecasts {
		if w := fc.Workload; w == nil || w.Kind != forecast.Diurnal || w.Bound != forecast.CPUBound {
			t.Errorf("%s: workload %+v, want diurnal and cpu-bound", fc.Key(), w)
		}
	}
	if w := res.Workloads[policies.Locality{Datacenter: "dc1", NodePool: "web"}]; w == nil {
		t.Error("the result does not list the locality's workload")
	}
}

// TestDrainOfSomeNodesKeepsDemand: a drain of some of the policy's own
// nodes moves their work to the rest of the locality; its forecast stays
// as it is, and without the node list, what they take of its capacity is
// not known, which the event says (TestDrainOfSomeNodesReadsHotspotsOnTheRest
// reads it with the node list).
func TestDrainOfSomeNodesKeepsDemand(t *testing.T) {
	pol := policy(t, `schedule "rack-a" {
    cron     = "30 0 * * *"
    duration = "1h"
    action   = "drain"
    nodes    = "dc1-rack-a-*"
  }`, nil)
	fc := Forecast{Metric: "cpu", Step: time.Minute}
	for i := range 60 {
		fc.Times = append(fc.Times, t0.Add(time.Duration(i+1)*time.Minute))
		fc.Mean = append(fc.Mean, 40)
	}
	fc.Quantiles, fc.Bands = []float64{0.9}, [][]float64{append([]float64(nil), fc.Mean...)}
	events := applySchedules(&fc, pol, nil, history{y: []float64{40}, start: t0, step: time.Minute}, fc.Mean, movedDemand{}, nil)
	for i, v := range fc.Mean {
		if v != 40 {
			t.Fatalf("mean[%d] = %v; the demand of a partly drained locality must stay", i, v)
		}
	}
	if len(events) != 1 || events[0].Kind != EventDrain || !strings.Contains(events[0].Detail, "dc1-rack-a-*") ||
		!strings.Contains(events[0].Detail, "the node list is not known") || events[0].Factor != 1 {
		t.Errorf("events %+v", events)
	}
}

// TestAnomaliesCarryScoreAndP: a spike in a series is reported for that
// series with the detector's score and p-value, and kept out of the model.
func TestAnomaliesCarryScoreAndP(t *testing.T) {
	s := newStore(t)
	fill(t, s, cpu, t0, 2*288, func(i int) float64 {
		if i == 500 {
			return 95
		}
		return daily(40, 10)(i) + 0.5*math.Sin(float64(i)*1.3)
	})
	res := New(nil).RunOnce(t0.Add((2*288-1)*5*time.Minute), s, []*policies.Policy{policy(t, "", nil)})
	var found *Anomaly
	for i, a := range res.Anomalies {
		if a.Start.Equal(t0.Add(500 * 5 * time.Minute)) {
			found = &res.Anomalies[i]
		}
	}
	if found == nil {
		t.Fatalf("no anomaly at the spike: %+v", res.Anomalies)
	}
	if found.Series != cpu || found.Kind != Spike || !(found.P > 0 && found.P < 1e-6) || found.Score < 0.8 {
		t.Errorf("anomaly %+v: want a spike of %s with a p-value below 1e-6 and a score above 0.8", *found, cpu)
	}
}

// A locality's capacity doubled five hours ago (a scale-out): its CPU
// percent history halves there while its demand in MHz keeps its daily
// shape. The percent forecast of a seasonal model repeats the shares of
// the old capacity; the demand forecast repeats the MHz, which over the
// capacity now is the share to read a hotspot on. A scheduled peak lifts
// both. Only policies with a scale block get it.
func TestDemandForecastBehindAPercentMetric(t *testing.T) {
	s := newStore(t)
	mhz := state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}
	n := 3 * 288
	demand := daily(6000, 2000)
	capacity := func(i int) float64 {
		if i < n-60 {
			return 10000
		}
		return 20000
	}
	fill(t, s, mhz, t0, n, demand)
	fill(t, s, cpu, t0, n, func(i int) float64 { return 100 * demand(i) / capacity(i) })
	now := t0.Add(time.Duration(n-1) * 5 * time.Minute)
	scales := func(p *policies.Policy) {
		p.Forecast.Model = "seasonal-naive"
		p.Scales = []policies.Scale{{Name: "nodes", Min: 1, Max: 10, Cooldown: policies.DefaultCooldown}}
	}
	pol := policy(t, "", scales)
	res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
	var fc *Forecast
	for i := range res.Forecasts {
		if res.Forecasts[i].Metric == "cpu" {
			fc = &res.Forecasts[i]
		}
	}
	if fc == nil || fc.Demand == nil {
		t.Fatalf("no cpu forecast with its demand: %+v", res)
	}
	if fc.Demand.Metric != "cpu_mhz" || len(fc.Demand.Mean) != len(fc.Times) || len(fc.Demand.Bands) != len(fc.Quantiles) {
		t.Fatalf("demand %+v", fc.Demand)
	}
	band := fc.DemandBand(fc.PlanningQuantile)
	for i := range fc.Times {
		want := demand(n + i) // the next day's point i+1 steps after the origin
		if got := fc.Demand.Mean[i]; math.Abs(got-want) > 0.02*want {
			t.Errorf("step %d: demand %.0f MHz, want %.0f", i, got, want)
		}
		// The percent forecast repeats the day before's share, at half
		// the capacity.
		if got := fc.Mean[i]; math.Abs(got-100*demand(n-288+i)/10000) > 1 {
			t.Errorf("step %d: percent %.1f, want the day before's %.1f", i, got, 100*demand(n-288+i)/10000)
		}
		if got := 100 * band[i] / 20000; math.Abs(got-100*want/20000) > 5 {
			t.Errorf("step %d: p90 demand over the capacity now %.1f%%, want about %.1f%%", i, got, 100*want/20000)
		}
	}
	// Without a scale block, without the absolute series, or when it does
	// not reach the origin, there is no demand.
	unscaled := policy(t, "", func(p *policies.Policy) { p.Forecast.Model = "seasonal-naive" })
	for _, f := range New(nil).RunOnce(now, s, []*policies.Policy{unscaled}).Forecasts {
		if f.Demand != nil {
			t.Errorf("%s: demand for a policy without a scale block", f.Metric)
		}
	}
	s2 := newStore(t)
	fill(t, s2, cpu, t0, n, func(i int) float64 { return 100 * demand(i) / capacity(i) })
	fill(t, s2, mhz, t0, n-1, demand)
	for _, r := range []Result{New(nil).RunOnce(now, s2, []*policies.Policy{pol})} {
		for _, f := range r.Forecasts {
			if f.Demand != nil {
				t.Errorf("%s: demand from a series that stops a step before the origin", f.Metric)
			}
		}
	}
	// A declared peak ahead multiplies the demand as it does the percent.
	peak := policy(t, `schedule "sale" {
    cron     = "0 0 * * *"
    duration = "1h"
    action   = "peak"
    factor   = 2
  }`, scales)
	res = New(nil).RunOnce(now, s, []*policies.Policy{peak})
	for _, f := range res.Forecasts {
		if f.Metric != "cpu" {
			continue
		}
		for i, at := range f.Times {
			if f.Demand == nil {
				t.Fatal("no demand with a peak")
			}
			if want := 2 * demand(n+i); math.Abs(f.Demand.Mean[i]-want) > 0.02*want {
				t.Errorf("%s: demand %.0f MHz inside the peak, want %.0f", at.Format("15:04"), f.Demand.Mean[i], want)
			}
		}
	}
}

// TestPeakWithoutFactorLiftsToTheWholeHistorysHighest: a peak with no
// factor and no past occurrence in the history lifts its window to the
// highest value the history holds, here 90% six and a half hours before
// the origin, and lifts the demand forecast behind it alike, to its own
// highest (9,000 MHz), which the planner reads for a hotspot's scale-out.
// Before, the lift read the forecast's shown history (its last 48 points,
// four hours at this step), so the percent was lifted to 40% only, and
// the demand, which shows none, was not lifted at all.
func TestPeakWithoutFactorLiftsToTheWholeHistorysHighest(t *testing.T) {
	s := newStore(t)
	mhz := state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}
	n := 288 // one day of 5-minute points, 40% of 10,000 MHz
	high := n - 1 - 78
	fill(t, s, cpu, t0, n, func(i int) float64 {
		if i == high {
			return 90
		}
		return 40
	})
	fill(t, s, mhz, t0, n, func(i int) float64 {
		if i == high {
			return 9000
		}
		return 4000
	})
	now := t0.Add(time.Duration(n-1) * 5 * time.Minute) // 23:55
	// A weekly peak whose first window starts after the history: no
	// past occurrence to learn a factor from.
	pol := policy(t, `schedule "launch" {
    cron     = "30 0 * * 2"
    duration = "1h"
    action   = "peak"
  }`, func(p *policies.Policy) {
		p.Forecast.Model = "naive"
		p.Scales = []policies.Scale{{Name: "nodes", Min: 1, Max: 10, Cooldown: policies.DefaultCooldown}}
	})
	var fc *Forecast
	res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
	for i := range res.Forecasts {
		if res.Forecasts[i].Metric == "cpu" {
			fc = &res.Forecasts[i]
		}
	}
	if fc == nil || fc.Demand == nil {
		t.Fatalf("no cpu forecast with its demand: %+v", res)
	}
	if len(fc.Events) != 1 || !strings.Contains(fc.Events[0].Detail, "lifted to the highest value seen") {
		t.Fatalf("events %+v; want the peak, lifted to the highest value seen", fc.Events)
	}
	w := fc.Events[0]
	for i, at := range fc.Times {
		inside := !at.Before(w.Start) && at.Before(w.End)
		want, wantMHz := 40.0, 4000.0
		if inside {
			want, wantMHz = 90, 9000
		}
		if got := fc.Mean[i]; math.Abs(got-want) > 0.5 {
			t.Errorf("%s: cpu %.1f%%, want %.0f%%", at.Format("15:04"), got, want)
		}
		if got := fc.Demand.Mean[i]; math.Abs(got-wantMHz) > 50 {
			t.Errorf("%s: demand %.0f MHz, want %.0f", at.Format("15:04"), got, wantMHz)
		}
	}
}
