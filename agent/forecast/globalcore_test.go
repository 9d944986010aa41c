package forecast

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/global"
)

// tinyGlobal is an untrained network for 5-minute series: enough to check
// the plumbing, not the accuracy.
func tinyGlobal(t testing.TB) *global.Model {
	t.Helper()
	m, err := global.New(global.Config{Name: "tiny", Arch: "nbeats", StepSeconds: 300, Daily: 288, Context: 24,
		Knots: []int{1, 2, 4, 8, 12}, Quantiles: DefaultQuantiles, Width: 8, Blocks: 2}, 5)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGlobalBacktestBatched: the batched backtest of the global network
// gives the forecasts a replay one origin at a time gives.
func TestGlobalBacktestBatched(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	y := randomWalk(r, 900, 1)
	y[500] = math.NaN()
	c := newGlobalCore(tinyGlobal(t))
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	c.setBase(base)
	batched := map[int][]float64{}
	origins := c.backtest(y, 12, func(o int, f []float64) { batched[o] = append([]float64(nil), f...) })
	if len(origins) < 100 {
		t.Fatalf("%d origins", len(origins))
	}
	seq := newGlobalCore(c.m)
	seq.setBase(base)
	buf := make([]float64, 12)
	next := 0
	for i, v := range y {
		if next < len(origins) && origins[next] == i {
			seq.forecast(buf)
			for h := range buf {
				if math.Abs(buf[h]-batched[i][h]) > 1e-9 {
					t.Fatalf("origin %d step %d: one at a time %v, batched %v", i, h+1, buf[h], batched[i][h])
				}
			}
			next++
		}
		seq.observe(v)
	}
}

// TestAutoColdStartUsesGlobal: with too little history for a backtest,
// auto forecasts with the global network's quantiles, in the physical
// range once the pipeline clamps them, not with widened Student-t bands.
func TestAutoColdStartUsesGlobal(t *testing.T) {
	tiny := tinyGlobal(t)
	o := Options{Step: 5 * time.Minute, Horizon: 12, Global: func() *global.Model { return tiny }}
	r := rand.New(rand.NewPCG(5, 6))
	y := make([]float64, 30)
	for i := range y {
		y[i] = 95 + 4*r.NormFloat64()
	}
	p, err := NewPipeline(PipelineOptions{Model: "auto", Options: o, Range: Percent})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AdvanceAt(y, len(y), time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	pred, err := p.Forecast(12)
	if err != nil {
		t.Fatal(err)
	}
	if pred.Model != "auto(global(tiny))" {
		t.Errorf("model %q (%s), want the global network on a cold start", pred.Model, pred.Reason)
	}
	for _, band := range pred.Bands {
		for _, v := range band {
			if v < 0 || v > 100 {
				t.Fatalf("band value %v outside the percent range", v)
			}
		}
	}
}

// TestAutoWithTwoDaysChoosesByBacktest: with two days of history or more,
// a backtest shorter than minWindows horizons still chooses among the
// candidates, the global network one of them: the network does not take
// over as on a cold start, and the bands get Student-t tails.
func TestAutoWithTwoDaysChoosesByBacktest(t *testing.T) {
	const day = 288
	// A wandering level with a daily season: the network's backtest is
	// within coldGlobalMargin of the best, so on a cold start it would
	// forecast.
	r := rand.New(rand.NewPCG(1, 9))
	y := make([]float64, 3*day)
	level := 50.0
	for i := range y {
		level += 0.5 * r.NormFloat64()
		y[i] = level + 10*math.Sin(2*math.Pi*float64(i)/day) + r.NormFloat64()
	}
	f := newAutoModel(Options{Step: 5 * time.Minute, Horizon: day})
	f.SetLast(time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC))
	if err := f.Fit(y); err != nil {
		t.Fatal(err)
	}
	if _, ok := global.ForArch(5*time.Minute, "nbeats"); !ok {
		t.Fatal("no shipped 5-minute network")
	}
	if f.cold != nil || f.cal.nu == 0 {
		t.Fatalf("cold network %v, tails %v: want the backtest's choice with Student-t tails (%s)", f.cold != nil, f.cal.nu, f.reason)
	}
	pred, err := f.Forecast(day)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(pred.Reason, "cold start: the backtest spans") || !strings.Contains(pred.Reason, "Student-t") {
		t.Errorf("reason %q: want the backtest's choice with widened bands", pred.Reason)
	}
}
