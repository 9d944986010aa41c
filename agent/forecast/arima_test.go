package forecast

import (
	"math/rand/v2"
	"testing"
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
