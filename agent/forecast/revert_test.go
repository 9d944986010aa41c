package forecast

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestRevertLevel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	noise := make([]float64, 240)
	for i := range noise {
		noise[i] = 50 + 5*r.NormFloat64()
	}
	noise[len(noise)-1] = 80
	trend := make([]float64, 240)
	for i := range trend {
		trend[i] = float64(i)
	}
	gappy := append([]float64(nil), noise...)
	gappy[len(gappy)-1] = math.NaN()
	gappy[10] = math.NaN()
	for _, tc := range []struct {
		name         string
		y            []float64
		first, final [2]float64 // ranges of the forecast 1 and H steps ahead
	}{
		{"a constant stays", constant(100, 7), [2]float64{7, 7}, [2]float64{7, 7}},
		{"noise returns to its level at once", noise, [2]float64{48, 55}, [2]float64{48, 52}},
		{"a trend: near its last value, later towards the mean", trend, [2]float64{236, 239}, [2]float64{119.5, 239}},
		{"missing points are skipped, the last finite value is last", gappy, [2]float64{48, 52}, [2]float64{48, 52}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const H = 60
			m := newRevertLevel(tc.y, H)
			if m == nil {
				t.Fatal("no model")
			}
			if f := m.at(1); f < tc.first[0] || f > tc.first[1] {
				t.Errorf("1 step ahead %v, want within %v", f, tc.first)
			}
			if f := m.at(H); f < tc.final[0] || f > tc.final[1] {
				t.Errorf("%d steps ahead %v, want within %v", H, f, tc.final)
			}
			for h := 1; h < H; h++ {
				if m.rho[h] > m.rho[h-1] || m.rho[h] < 0 || m.rho[h-1] > 1 {
					t.Fatalf("autocorrelation %v at lag %d after %v", m.rho[h], h+1, m.rho[h-1])
				}
			}
		})
	}
	if m := newRevertLevel([]float64{math.NaN(), math.NaN()}, 12); m != nil {
		t.Errorf("a model from no finite point: %+v", m)
	}
}

// swings is a one-minute series as a locality of a bursty job sums it:
// six allocations playing the same 5-minute trace (swinging around
// level) up to an hour out of phase, interpolated linearly between the points.
func swings(r *rand.Rand, n int, level, sd float64) []float64 {
	const k = 5
	pts := make([]float64, n/k+40)
	z := 0.0
	for i := range pts {
		z = 0.5*z + r.NormFloat64()
		pts[i] = math.Max(0, level+sd*z)
	}
	at := func(m float64) float64 {
		i := int(m / k)
		w := m/k - float64(i)
		return pts[i]*(1-w) + pts[i+1]*w
	}
	y := make([]float64, n)
	var phases [6]float64
	for j := range phases {
		phases[j] = float64(r.IntN(60))
	}
	for i := range y {
		for _, p := range phases {
			y[i] += at(float64(i)+p) / float64(len(phases))
		}
	}
	return y
}

// TestAutoColdStartCombines: on a cold start auto's median is the mean of
// the network's median, the last value and the mean-reverting level, and
// its bands are the network's, moved with the median.
func TestAutoColdStartCombines(t *testing.T) {
	y := swings(rand.New(rand.NewPCG(11, 12)), 120, 25, 10)
	o := Options{Step: time.Minute, Horizon: 60, Quantiles: DefaultQuantiles}
	last := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	f := mustNew(t, "auto", o)
	f.(Timed).SetLast(last)
	if err := f.Fit(y); err != nil {
		t.Fatal(err)
	}
	got, err := f.Forecast(60)
	if err != nil {
		t.Fatal(err)
	}
	a := f.(*autoModel)
	if a.cold == nil {
		t.Fatalf("no cold start: %s", got.Reason)
	}
	net, ok := a.cold.quantiles(60)
	if !ok {
		t.Fatal("the network gave no forecast")
	}
	alone := fromQuantiles("", "", net, o.quantiles())
	r := newRevertLevel(y, 60)
	for h := range got.Mean {
		want := (alone.Mean[h] + y[len(y)-1] + r.at(h+1)) / 3
		if math.Abs(got.Mean[h]-want) > 1e-9 {
			t.Fatalf("median %d steps ahead %v, want %v", h+1, got.Mean[h], want)
		}
		for i := range got.Bands {
			if d := got.Bands[i][h] - got.Mean[h] - (alone.Bands[i][h] - alone.Mean[h]); math.Abs(d) > 1e-9 {
				t.Fatalf("band %v %d steps ahead is %v off the network's distance from its median", got.Quantiles[i], h+1, d)
			}
		}
	}
}

// TestAutoUnderTwoDaysKeepsTheLastValue: with less than two days of
// history but a backtest long enough to choose, the last value joins the
// backtest's choice, even where the backtest ranks it last.
func TestAutoUnderTwoDaysKeepsTheLastValue(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	y := make([]float64, 15*60) // fifteen hours of one-minute points
	for i := range y {
		y[i] = 40 + 5*r.NormFloat64()
	}
	f := newAutoModel(Options{Step: time.Minute, Horizon: 60})
	if err := f.Fit(y); err != nil {
		t.Fatal(err)
	}
	if f.cold != nil || f.cal.nu != 0 {
		t.Fatalf("cold network %v, tails %v: want the backtest's choice (%s)", f.cold != nil, f.cal.nu, f.reason)
	}
	var names []string
	for _, m := range f.ac.members {
		names = append(names, m.name)
	}
	if !slices.Contains(names, "naive") || len(names) < 2 {
		t.Fatalf("members %v (%s): want the backtest's choice and naive", names, f.reason)
	}
	pred, err := f.Forecast(60)
	if err != nil {
		t.Fatal(err)
	}
	checkPrediction(t, "auto", pred, 60)
}

// TestAutoColdStartAfterAShift: fitted a minute after a level shift, too
// soon to see it, then updated for half an hour at the new level, auto's
// cold start forecasts the new level, not a pull back towards the old one.
func TestAutoColdStartAfterAShift(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	y := make([]float64, 121)
	for i := range y {
		level := 33.5
		if i >= 90 {
			level = 24
		}
		y[i] = level + 0.1*r.NormFloat64()
	}
	f := newAutoModel(Options{Step: time.Minute, Horizon: 60})
	f.SetLast(time.Date(2024, 3, 1, 7, 31, 0, 0, time.UTC))
	if err := f.Fit(y[:92]); err != nil {
		t.Fatal(err)
	}
	f.Update(y[92:]...)
	pred, err := f.Forecast(60)
	if err != nil {
		t.Fatal(err)
	}
	if f.cold == nil {
		t.Fatalf("no cold start: %s", pred.Reason)
	}
	for h, v := range pred.Mean {
		if v < 23 || v > 25 {
			t.Fatalf("median %d steps ahead %.2f, want the new level 24", h+1, v)
		}
	}
}

// TestAutoColdStartSeesEachPointOnce: updated after a cold start, the
// network sees each new point once, also when the backtest chose it as a
// member of the combination as well (it then forecast from a history with
// every new point twice, and a clock running ahead of the series').
func TestAutoColdStartSeesEachPointOnce(t *testing.T) {
	members := 0
	for seed := range uint64(12) {
		y := swings(rand.New(rand.NewPCG(seed, 21)), 150, 25, 10)
		f := newAutoModel(Options{Step: time.Minute, Horizon: 60})
		f.SetLast(time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC))
		if err := f.Fit(y[:120]); err != nil {
			t.Fatal(err)
		}
		if f.cold == nil {
			t.Fatalf("seed %d: no cold start: %s", seed, f.reason)
		}
		if slices.ContainsFunc(f.ac.members, func(c candidate) bool { return c.c == core(f.cold) }) {
			members++
		}
		f.Update(y[120:]...)
		if !slices.Equal(f.cold.hist, y) || f.cold.n != len(y) {
			t.Errorf("seed %d: the network holds %d points (counted %d) after seeing %d", seed, len(f.cold.hist), f.cold.n, len(y))
		}
	}
	if members == 0 {
		t.Fatal("the backtest chose the network as a member on none of the series: the check needs one that it does")
	}
	t.Logf("the network was a member on %d of 12 series", members)
}
