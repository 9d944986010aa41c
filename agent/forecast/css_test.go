package forecast

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestCSSCompleteMatchesGeneric holds cssComplete to cssARIMA bit for bit
// on series without missing values, for every order up to (3,3) (the
// specialised loops and the fallback), on series of every short length
// and on a long one, with and without a mean.
func TestCSSCompleteMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	series := map[string][]float64{}
	for _, n := range []int{0, 1, 2, 3, 4, 7, 1008} {
		w := make([]float64, n)
		prev := 0.0
		for i := range w {
			prev = 0.6*prev + rng.NormFloat64()
			w[i] = 3 + prev
		}
		series[fmt.Sprintf("ar1 n=%d", n)] = w
	}
	steps := make([]float64, 500)
	for i := range steps {
		steps[i] = math.Round(rng.Float64()*4) - 2 // many exact zeros and ties
	}
	series["integer steps"] = steps
	for name, w := range series {
		for p := 0; p <= 3; p++ {
			for q := 0; q <= 3; q++ {
				for _, mu := range []float64{0, 2.7} {
					phi := make([]float64, p)
					theta := make([]float64, q)
					for i := range phi {
						phi[i] = rng.Float64() - 0.5
					}
					for i := range theta {
						theta[i] = rng.Float64() - 0.5
					}
					ebuf := make([]float64, len(w))
					ww := append([]float64(nil), w...)
					want, _ := cssARIMA(ww, phi, theta, mu, ebuf)
					got := cssComplete(w, phi, theta, mu, make([]float64, len(w)))
					if math.Float64bits(got) != math.Float64bits(want) {
						t.Errorf("%s, ARMA(%d,%d), mu %g: cssComplete %v, cssARIMA %v", name, p, q, mu, got, want)
					}
				}
			}
		}
	}
}
