package forecast

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestErfinvMatchesMath holds erfinv to math.Erfinv bit for bit where the
// math package fuses no multiply-add (amd64 below GOAMD64=v3): every level
// 0.0001 apart as normQuantile asks, each branch's edges, ±1, beyond, NaN,
// zeros of both signs and random values. Elsewhere the golden forecasts
// (make test-v3) check it.
func TestErfinvMatchesMath(t *testing.T) {
	if mathFused {
		t.Skip("the math package may fuse multiply-adds in this build; checked on a GOAMD64=v1 amd64 build")
	}
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 2, -2, math.NaN(), math.Inf(1), math.Inf(-1), 0.85, -0.85,
		math.Nextafter(0.85, 1), math.Nextafter(1, 0), 1 - 2*math.Exp(-25), 5e-324}
	for i := 1; i < 10000; i++ {
		vals = append(vals, 1-2*(float64(i)/10000))
	}
	rng := rand.New(rand.NewPCG(31, 32))
	for range 100000 {
		vals = append(vals, rng.Float64()*2-1, 1-math.Pow(10, -rng.Float64()*16))
	}
	for _, v := range vals {
		got, want := erfinv(v), math.Erfinv(v)
		if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("erfinv(%v [%#x]) = %v, math.Erfinv %v", v, math.Float64bits(v), got, want)
		}
	}
}
