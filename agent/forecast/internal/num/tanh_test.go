package num

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTanhMatchesMath holds Tanh to math.Tanh bit for bit where the math
// package fuses no multiply-add (amd64 below GOAMD64=v3), on the branch
// edges, zeros, NaN, infinities and 2,000,000 random values across scales.
func TestTanhMatchesMath(t *testing.T) {
	if mathFused {
		t.Skip("the math package may fuse multiply-adds in this build; checked on a GOAMD64=v1 amd64 build")
	}
	vals := []float64{0, math.Copysign(0, -1), 0.625, -0.625, math.Nextafter(0.625, 0), math.NaN(), math.Inf(1), math.Inf(-1), 5e-324, 44.01, 45}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 2000000 {
		switch i % 3 {
		case 0:
			vals = append(vals, rng.Float64()*1.3-0.65)
		case 1:
			vals = append(vals, rng.NormFloat64()*math.Pow(10, float64(rng.IntN(20)-15)))
		default:
			vals = append(vals, math.Float64frombits(rng.Uint64()))
		}
	}
	for _, v := range vals {
		got, want := Tanh(v), math.Tanh(v)
		if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("Tanh(%v [%#x]) = %v, math.Tanh %v", v, math.Float64bits(v), got, want)
		}
	}
}
