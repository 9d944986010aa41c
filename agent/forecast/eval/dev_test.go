package eval_test

import (
	"math"
	"sort"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/sim"
)

// devLocalities are the localities the dev policies shape, as matches on a
// node's datacenter, pool and class ("*" for any).
var devLocalities = []struct{ name, dc, pool, class string }{
	{"dc1/*/web", "dc1", "*", "web"},
	{"dc2", "dc2", "*", "*"},
	{"dc1/batch", "dc1", "batch", "*"},
	{"dc3", "dc3", "*", "*"},
}

// devCPU runs the bundled default scenario with a seed for d of virtual
// time and returns each dev locality's CPU demand, percent of its capacity,
// per minute from the start (the ground truth the agent's series measure).
func devCPU(t *testing.T, seed uint64, d time.Duration) map[string][]float64 {
	t.Helper()
	sc := sim.DefaultScenario()
	c, err := sim.New(sc, sim.Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RunUntil(sc.Start.Add(d)); err != nil {
		t.Fatal(err)
	}
	n := int(d / time.Minute)
	out := map[string][]float64{}
	dem, capy := map[string][]float64{}, map[string][]float64{}
	for _, l := range devLocalities {
		dem[l.name], capy[l.name] = make([]float64, n), make([]float64, n)
	}
	ok := func(want, got string) bool { return want == "*" || want == got }
	for _, nm := range c.Truth().NodeMinutes {
		i := int(nm.Minute.Sub(sc.Start) / time.Minute)
		if i < 0 || i >= n {
			continue
		}
		for _, l := range devLocalities {
			if ok(l.dc, nm.Datacenter) && ok(l.pool, nm.NodePool) && ok(l.class, nm.NodeClass) {
				dem[l.name][i] += math.Min(nm.CPUDemandMHz, nm.CPUCapacityMHz)
				capy[l.name][i] += nm.CPUCapacityMHz
			}
		}
	}
	for _, l := range devLocalities {
		y := make([]float64, n)
		for i := range y {
			y[i] = math.NaN()
			if capy[l.name][i] > 0 {
				y[i] = 100 * dem[l.name][i] / capy[l.name][i]
			}
		}
		out[l.name] = y
	}
	return out
}

// devRatio is the p50's MASE over the next hour divided by naive's, for
// auto forecasting y (1-minute points from the scenario's start) from
// origin o, with the agent's pipeline as the dev policies configure it.
func devRatio(t *testing.T, model string, y []float64, o int, start time.Time) float64 {
	t.Helper()
	p, err := forecast.NewPipeline(forecast.PipelineOptions{Model: model, Range: forecast.Percent,
		Options: forecast.Options{Step: time.Minute, Horizon: 60, Quantiles: forecast.DefaultQuantiles}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AdvanceAt(y[:o+1], o+1, start.Add(time.Duration(o)*time.Minute)); err != nil {
		t.Fatal(err)
	}
	pred, err := p.Forecast(60)
	if err != nil {
		t.Fatal(err)
	}
	return naiveRatio(y, o, pred.Quantile(0.5))
}

// naiveRatio is the p50's MASE over the next hour divided by naive's, for
// a forecast p50 made at origin o of y.
func naiveRatio(y []float64, o int, p50 []float64) float64 {
	var e, en, scale float64
	var k, ks int
	for h := 0; h < 60 && o+1+h < len(y); h++ {
		a := y[o+1+h]
		if math.IsNaN(a) {
			continue
		}
		e += math.Abs(p50[h] - a)
		en += math.Abs(y[o] - a)
		k++
	}
	for i := max(1, o-180); i <= o; i++ {
		if !math.IsNaN(y[i]) && !math.IsNaN(y[i-1]) {
			scale += math.Abs(y[i] - y[i-1])
			ks++
		}
	}
	if k == 0 || ks == 0 || scale == 0 || en == 0 {
		return math.NaN()
	}
	return e / en
}

// TestDevScenarioAccuracy forecasts the dev localities' CPU, as the agent
// does with two hours of one-minute history, on three seeds of the bundled
// scenario in process, and holds the engine to what it reaches: the p50's
// error over the next hour against naive's, per locality and overall
// (mean over forecasts made every five minutes from two hours in), and
// logs every locality's figures.
func TestDevScenarioAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates three scenario runs")
	}
	for _, model := range devModels {
		var all []float64
		for _, seed := range []uint64{7, 8, 9} {
			series := devCPU(t, seed, 3*time.Hour+30*time.Minute)
			start := sim.DefaultScenario().Start
			for _, l := range devLocalities {
				var rs []float64
				for o := 120; o <= 150; o += 5 {
					if r := devRatio(t, model, series[l.name], o, start); !math.IsNaN(r) {
						rs = append(rs, r)
					}
				}
				all = append(all, rs...)
				t.Logf("%s seed %d %-10s MASE / naive at origins 2h00..2h30: %v (mean %.2f)", model, seed, l.name, round2(rs), mean(rs))
			}
		}
		sort.Float64s(all)
		t.Logf("%s all: mean %.3f, median %.3f, worst %.2f", model, mean(all), all[len(all)/2], all[len(all)-1])
		if m, med := mean(all), all[len(all)/2]; m > devMaxMean || med > devMaxMedian {
			t.Errorf("%s: the p50's error over the next hour is %.3f times naive's on average (median %.3f), more than %.2f (%.2f)", model, m, med, devMaxMean, devMaxMedian)
		}
	}
}

// TestDevScenarioColdStarts forecasts the dev localities' CPU from two to
// nine hours of one-minute history (auto's cold start: the global network
// with the last value and a mean-reverting level), every half hour, on
// seeds of the bundled scenario other than the agent's end-to-end check's,
// and holds the p50's error over the next hour to what the engine reaches
// against naive's, per locality (dc2, whose demand saturates its capacity
// in process, is left out: naive is exact there).
func TestDevScenarioColdStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates eight scenario runs")
	}
	start := sim.DefaultScenario().Start
	rs := map[string][]float64{}
	for _, seed := range []uint64{1, 2, 3, 4, 5, 6, 10, 11} {
		series := devCPU(t, seed, 10*time.Hour)
		for _, l := range devLocalities {
			if l.name == "dc2" {
				continue
			}
			for o := 120; o <= 540; o += 30 {
				if r := devRatio(t, "auto", series[l.name], o, start); !math.IsNaN(r) {
					rs[l.name] = append(rs[l.name], r)
				}
			}
		}
	}
	var all []float64
	for _, l := range devLocalities {
		if r := rs[l.name]; len(r) > 0 {
			t.Logf("%-10s MASE / naive over %d forecasts: mean %.3f", l.name, len(r), mean(r))
			all = append(all, r...)
		}
	}
	t.Logf("all: mean %.3f", mean(all))
	if m := mean(all); m > devColdMaxMean {
		t.Errorf("the p50's error over the next hour is %.3f times naive's on average, more than %.2f", m, devColdMaxMean)
	}
}

// TestDevScenarioAsTheAgentAdvances is TestDevScenarioAccuracy with the
// pipeline advanced one minute at a time from half an hour in, as the
// agent advances it (refitting on its own schedule and updating between
// refits), instead of fitted afresh at each origin: a model whose state
// goes stale between refits shows here only.
func TestDevScenarioAsTheAgentAdvances(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates three scenario runs")
	}
	start := sim.DefaultScenario().Start
	var all []float64
	for _, seed := range []uint64{7, 8, 9} {
		series := devCPU(t, seed, 3*time.Hour+30*time.Minute)
		for _, l := range devLocalities {
			y := series[l.name]
			p, err := forecast.NewPipeline(forecast.PipelineOptions{Model: "auto", Range: forecast.Percent,
				Options: forecast.Options{Step: time.Minute, Horizon: 60, Quantiles: forecast.DefaultQuantiles}})
			if err != nil {
				t.Fatal(err)
			}
			const first = 30
			var rs []float64
			for n := first; n <= 151; n++ {
				fresh := 1
				if n == first {
					fresh = n
				}
				if _, err := p.AdvanceAt(y[:n], fresh, start.Add(time.Duration(n-1)*time.Minute)); err != nil {
					t.Fatal(err)
				}
				o := n - 1
				if o < 120 || (o-120)%5 != 0 {
					continue
				}
				pred, err := p.Forecast(60)
				if err != nil {
					t.Fatal(err)
				}
				if r := naiveRatio(y, o, pred.Quantile(0.5)); !math.IsNaN(r) {
					rs = append(rs, r)
				}
			}
			all = append(all, rs...)
			t.Logf("seed %d %-10s MASE / naive at origins 2h00..2h30: %v (mean %.2f)", seed, l.name, round2(rs), mean(rs))
			if m := mean(rs); m > devMaxLocalityMean {
				t.Errorf("seed %d %s: the p50's error over the next hour is %.2f times naive's on average, more than %.2f", seed, l.name, m, devMaxLocalityMean)
			}
		}
	}
	t.Logf("all: mean %.3f", mean(all))
	if m := mean(all); m > devMaxMean {
		t.Errorf("the p50's error over the next hour is %.3f times naive's on average, more than %.2f", m, devMaxMean)
	}
}

// devMaxLocalityMean bounds a locality's mean ratio over one seed's
// origins in TestDevScenarioAsTheAgentAdvances (0.60 to 1.00 when it was
// written).
const devMaxLocalityMean = 1.25

var devModels = []string{"auto"}

// What the engine reached when this test was written (mean 0.874, median
// 0.956 over 84 forecasts), with a margin: the scenario and the models are
// deterministic, so only a change to the engine moves them.
const (
	devMaxMean   = 0.92
	devMaxMedian = 1.0
)

// What auto's cold start reached from two to nine hours of history when
// TestDevScenarioColdStarts was written (mean 0.92; the network alone
// 0.96), with a margin.
const devColdMaxMean = 0.94

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func round2(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Round(100*v) / 100
	}
	return out
}
