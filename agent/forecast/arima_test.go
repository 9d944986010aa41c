package forecast

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestMixedOrdersOnlyForCorrelatedResiduals: auto's ARIMA candidate
// searches the mixed orders when the best AR fit leaves autocorrelated
// residuals (an MA component the AR orders approximate badly) and skips
// them when they are white (an AR process it already captures).
func TestMixedOrdersOnlyForCorrelatedResiduals(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 6))
	gen := func(phi, theta float64) []float64 {
		y := make([]float64, 2016)
		prevY, prevE := 10.0, 0.0
		for i := range y {
			e := r.NormFloat64()
			y[i] = 10 + phi*(prevY-10) + e + theta*prevE
			prevY, prevE = y[i], e
		}
		return y
	}
	cases := []struct {
		name       string
		phi, theta float64
		correlated bool
		wantMixed  bool
	}{
		{"AR(1)", 0.5, 0, false, false},
		{"white noise", 0, 0, false, false},
		{"ARMA(1,1) with a strong MA part", 0.3, -0.9, true, true},
	}
	for _, c := range cases {
		y := gen(c.phi, c.theta)
		d := ndiffs(y)
		if d != 0 {
			t.Fatalf("%s: KPSS asks for %d differences of a stationary series", c.name, d)
		}
		best := fitAROLS(y, 0, true, 0)
		for p := 1; p <= maxAROrder; p++ {
			if m := fitAROLS(y, p, true, 0); m.ic < best.ic {
				best = m
			}
		}
		if got := residualsCorrelated(y, best); got != c.correlated {
			t.Errorf("%s: residuals of %s correlated = %v, want %v", c.name, best.ord, got, c.correlated)
		}
		a := &arCore{mixed: true}
		if err := a.fit(y); err != nil {
			t.Fatal(err)
		}
		if got := a.ord.q > 0; got != c.wantMixed {
			t.Errorf("%s: arCore chose %s, want a mixed order: %v", c.name, a.ord, c.wantMixed)
		}
	}
}

// TestARIMAOnASparseSeries: an hourly series read on a five-minute grid
// has one point in twelve, so no two neighbours are both observed. The
// ARIMA models fall back to a random walk there rather than estimate an
// order on differences that do not exist (whose refit forecast NaN, and
// whose first fit, with a missing value among the first lags, had a sum
// of squares of NaN and a mean of 0), and forecast near the series.
func TestARIMAOnASparseSeries(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 7))
	y := make([]float64, 8000)
	for i := range y {
		y[i] = math.NaN()
		if i%12 == 5 {
			y[i] = 60 + 8*math.Sin(2*math.Pi*float64(i)/(288*12)) + r.NormFloat64()
		}
	}
	for _, name := range []string{"arima", "auto"} {
		f, err := New(name, Options{Step: 5 * time.Minute, Horizon: 12})
		if err != nil {
			t.Fatal(err)
		}
		// A first fit, then refits of the order found, as the pipeline's
		// schedule makes them.
		for _, n := range []int{6000, 6288, 6576, 8000} {
			if err := f.Fit(y[:n]); err != nil {
				t.Fatalf("%s: fit on %d points: %v", name, n, err)
			}
			p, err := f.Forecast(12)
			if err != nil {
				t.Fatalf("%s: forecast after %d points: %v", name, n, err)
			}
			for h, v := range p.Mean {
				if !(v > 40 && v < 80) {
					t.Fatalf("%s (%s) after %d points: step %d forecast %v, the series lies in 48-72", name, p.Model, n, h, v)
				}
			}
		}
	}
	// near fits c to y[:n] (fit and reset: its state from the start),
	// feeds it y[:n] and holds its forecast to the series' range.
	near := func(what string, c core, n int) {
		t.Helper()
		if err := c.fit(y[:n]); err != nil {
			t.Fatal(err)
		}
		c.reset()
		for _, v := range y[:n] {
			c.observe(v)
		}
		out := make([]float64, 12)
		c.forecast(out)
		for h, v := range out {
			if !(v > 40 && v < 80) {
				t.Fatalf("%s after %d points: step %d forecast %v (%s)", what, n, h, v, c.label())
			}
		}
	}
	// An order found on denser history, refitted on the sparse one.
	for _, o := range []arimaOrder{{2, 2, 2, false}, {1, 1, 1, true}} {
		near(fmt.Sprintf("%v refitted", o), &arimaSelect{arimaCore: &arimaCore{ord: o}}, len(y))
	}
	// The AR candidate auto fits, first and again.
	c := &arCore{}
	for _, n := range []int{6000, 8000} {
		near("AR candidate", c, n)
	}
	// A missing value among the first lags does not make the sum of
	// squares NaN.
	w := []float64{math.NaN(), 1, math.NaN(), 2, 1.5, 1.8, 1.2, 1.7}
	if sse, k := cssARIMA(append([]float64(nil), w...), []float64{0.5, 0.1}, []float64{0.2}, 1.5, make([]float64, len(w))); math.IsNaN(sse) || k != 5 {
		t.Errorf("sum of squares %v over %d terms, want a number over 5", sse, k)
	}
}
