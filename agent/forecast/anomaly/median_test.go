package anomaly

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// TestMedianAndMADAsSorted holds medianOf and madOf (selection) to the
// sorted figures (sortedMedian, sortedMAD) bit for bit, with ties, zeros
// of both signs and missing values.
func TestMedianAndMADAsSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 8))
	for n := 0; n <= 60; n++ {
		for trial := 0; trial < 40; trial++ {
			x := make([]float64, n)
			for i := range x {
				switch rng.IntN(7) {
				case 0:
					x[i] = math.NaN()
				case 1:
					x[i] = float64(rng.IntN(3))
				case 2:
					if trial%4 == 0 {
						x[i] = math.Copysign(0, -1)
					}
				case 3:
					x[i] = math.Inf(1)
				default:
					x[i] = 10 * rng.NormFloat64()
				}
			}
			a := finiteValues(x)
			sort.Float64s(a)
			wantMed, wantMAD := sortedMedian(a), sortedMAD(a)
			gotMed, gotMAD := medianOf(x), madOf(x)
			if math.Float64bits(gotMed) != math.Float64bits(wantMed) || math.Float64bits(gotMAD) != math.Float64bits(wantMAD) {
				t.Fatalf("%v: median %v MAD %v, sorted %v %v", x, gotMed, gotMAD, wantMed, wantMAD)
			}
		}
	}
}
