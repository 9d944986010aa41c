package forecast

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

// fiveMin are the options of a 5-minute series with a 12-step horizon.
var fiveMin = Options{Step: 5 * time.Minute, Horizon: 12}

func constant(n int, v float64) []float64 {
	y := make([]float64, n)
	for i := range y {
		y[i] = v
	}
	return y
}

// seasonal is a noiseless daily-shaped pattern of period m.
func seasonal(n, m int, amp, level float64) []float64 {
	y := make([]float64, n)
	for i := range y {
		ph := 2 * math.Pi * float64(i%m) / float64(m)
		y[i] = level + amp*math.Sin(ph) + 0.3*amp*math.Cos(2*ph)
	}
	return y
}

func randomWalk(r *rand.Rand, n int, sigma float64) []float64 {
	y := make([]float64, n)
	v := 100.0
	for i := range y {
		v += sigma * r.NormFloat64()
		y[i] = v
	}
	return y
}

func mustNew(t testing.TB, name string, o Options) Forecaster {
	t.Helper()
	f, err := New(name, o)
	if err != nil {
		t.Fatalf("New(%q): %v", name, err)
	}
	return f
}

func fitForecast(t testing.TB, name string, o Options, y []float64, h int) Prediction {
	t.Helper()
	f := mustNew(t, name, o)
	if err := f.Fit(y); err != nil {
		t.Fatalf("%s: Fit: %v", name, err)
	}
	p, err := f.Forecast(h)
	if err != nil {
		t.Fatalf("%s: Forecast: %v", name, err)
	}
	checkPrediction(t, name, p, h)
	return p
}

// checkPrediction asserts the shape invariants of every prediction: finite
// values, h steps, ascending levels and non-crossing bands.
func checkPrediction(t testing.TB, name string, p Prediction, h int) {
	t.Helper()
	if len(p.Mean) != h {
		t.Fatalf("%s: mean has %d steps, want %d", name, len(p.Mean), h)
	}
	if len(p.Bands) != len(p.Quantiles) {
		t.Fatalf("%s: %d bands for %d quantiles", name, len(p.Bands), len(p.Quantiles))
	}
	for i := range p.Quantiles {
		if i > 0 && p.Quantiles[i] <= p.Quantiles[i-1] {
			t.Fatalf("%s: quantiles not ascending: %v", name, p.Quantiles)
		}
		if len(p.Bands[i]) != h {
			t.Fatalf("%s: band %d has %d steps", name, i, len(p.Bands[i]))
		}
		for s := 0; s < h; s++ {
			if !num.Finite(p.Bands[i][s]) {
				t.Fatalf("%s: band q=%v step %d not finite: %v", name, p.Quantiles[i], s, p.Bands[i][s])
			}
			if i > 0 && p.Bands[i][s] < p.Bands[i-1][s]-1e-9 {
				t.Fatalf("%s: bands cross at step %d: q%v=%v < q%v=%v", name, s, p.Quantiles[i], p.Bands[i][s], p.Quantiles[i-1], p.Bands[i-1][s])
			}
		}
	}
	for s, v := range p.Mean {
		if !num.Finite(v) {
			t.Fatalf("%s: mean step %d not finite: %v", name, s, v)
		}
	}
	if p.Model == "" {
		t.Fatalf("%s: prediction names no model", name)
	}
}

// coverage fits on expanding windows at origins every stride steps from
// start and returns the share of actuals inside the [lo, hi] band for each
// pair of levels in bands (lo1, hi1, lo2, hi2, …).
func coverage(t testing.TB, name string, o Options, y []float64, start, h, stride int, bands ...float64) []float64 {
	t.Helper()
	in := make([]int, len(bands)/2)
	all := 0
	for origin := start; origin+h <= len(y); origin += stride {
		p := fitForecast(t, name, o, y[:origin], h)
		for s := 0; s < h; s++ {
			a := y[origin+s]
			for i := range in {
				l, u := p.Quantile(bands[2*i]), p.Quantile(bands[2*i+1])
				if a >= l[s] && a <= u[s] {
					in[i]++
				}
			}
			all++
		}
	}
	out := make([]float64, len(in))
	for i := range in {
		out[i] = float64(in[i]) / float64(all)
	}
	return out
}
