package global

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestUnfusedMatchesMath holds sinh, sin, cos and asinh to the math
// package's functions bit for bit where that package fuses no multiply-add
// (amd64 below GOAMD64=v3): on each branch's edges, zeros of both signs,
// NaN, infinities, the calendar's angles and random values across scales.
// Elsewhere the golden forecasts (make test-v3) check them.
func TestUnfusedMatchesMath(t *testing.T) {
	if mathFused {
		t.Skip("the math package may fuse multiply-adds in this build; checked on a GOAMD64=v1 amd64 build")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	vals := []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 0.5, 21, 1 << 29,
		math.Pi / 4, math.Pi / 2, math.Pi, 2 * math.Pi, 5e-324, 1e-300, math.MaxFloat64}
	for _, v := range vals[:len(vals):len(vals)] {
		for _, w := range []float64{math.Nextafter(v, math.Inf(1)), math.Nextafter(v, math.Inf(-1))} {
			vals = append(vals, w, -w)
		}
	}
	for i := range 1440 * 7 { // every minute of a week, as the calendar's angles
		day := float64(i%1440*60) / 86400
		vals = append(vals, 2*math.Pi*day, 2*math.Pi*(float64(i/1440)+day)/7)
	}
	for range 200000 {
		switch rng.IntN(3) {
		case 0:
			vals = append(vals, rng.NormFloat64()*math.Pow(10, float64(rng.IntN(24)-12)))
		case 1:
			vals = append(vals, rng.Float64()*14-7)
		default:
			vals = append(vals, math.Float64frombits(rng.Uint64()))
		}
	}
	same := func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
	}
	for _, v := range vals {
		if got, want := sinh(v), math.Sinh(v); !same(got, want) {
			t.Fatalf("sinh(%v [%#x]) = %v, math.Sinh %v", v, math.Float64bits(v), got, want)
		}
		if got, want := sin(v), math.Sin(v); !same(got, want) {
			t.Fatalf("sin(%v [%#x]) = %v, math.Sin %v", v, math.Float64bits(v), got, want)
		}
		if got, want := cos(v), math.Cos(v); !same(got, want) {
			t.Fatalf("cos(%v [%#x]) = %v, math.Cos %v", v, math.Float64bits(v), got, want)
		}
		if got, want := asinh(v), math.Asinh(v); !same(got, want) {
			t.Fatalf("asinh(%v [%#x]) = %v, math.Asinh %v", v, math.Float64bits(v), got, want)
		}
	}
}
