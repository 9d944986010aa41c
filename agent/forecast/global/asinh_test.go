package global

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSquashAllMatchesAsinh holds squashAll to math.Asinh bit for bit: on
// values across every scale and both signs, on each branch's edges (2**-28,
// 2, 2**28, log1p's Sqrt(2)-1 and the arguments where 1+y is a power of
// two), zeros of both signs, subnormals, NaN and infinities, and on random
// bit patterns, at every length around the four-wide blocks. Where the math
// package may fuse multiply-adds (GOAMD64=v3) the kernel is held to asinh,
// the values it leaves computed without fusing.
func TestSquashAllMatchesAsinh(t *testing.T) { eachKernelSetting(t, testSquashAllMatchesAsinh) }

func testSquashAllMatchesAsinh(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var vals []float64
	for _, v := range []float64{0, 1, 2, 3, 4, 0.5, 0.75, 1.5, 2.5, 1 << 28, 1.0 / (1 << 28), 1.0 / (1 << 29),
		0.41421356237309503, 0.4142135623730951, 0.29289321881345254, 1e-300, 5e-324, 2.2250738585072014e-308,
		math.MaxFloat64, math.Inf(1), math.NaN(), math.SmallestNonzeroFloat64} {
		for _, e := range []float64{0, 1, -1, 2, -2} {
			w := v
			for range int(math.Abs(e)) {
				if e > 0 {
					w = math.Nextafter(w, math.Inf(1))
				} else {
					w = math.Nextafter(w, math.Inf(-1))
				}
			}
			vals = append(vals, w, -w)
		}
	}
	vals = append(vals, math.Copysign(0, -1))
	// The asinh arguments y where 1+y lands on or near a power of two.
	for _, y := range []float64{1, 3} {
		for _, d := range []float64{-3e-16, -1e-16, 0, 1e-16, 3e-16} {
			// x with x + x*x/(1+sqrt(1+x*x)) near y: x = sinh(log1p(y)).
			x := math.Sinh(math.Log1p(y + d))
			for k := -4; k <= 4; k++ {
				w := x
				for range k {
					w = math.Nextafter(w, math.Inf(1))
				}
				for range -k {
					w = math.Nextafter(w, math.Inf(-1))
				}
				vals = append(vals, w, -w)
			}
		}
	}
	for range 200000 {
		switch rng.IntN(3) {
		case 0:
			vals = append(vals, rng.NormFloat64()*math.Pow(10, float64(rng.IntN(30)-15)))
		case 1:
			vals = append(vals, (rng.Float64()*6-3)*float64(rng.IntN(2)*2-1))
		default:
			vals = append(vals, math.Float64frombits(rng.Uint64()))
		}
	}
	check := func(x []float64) {
		t.Helper()
		got := append([]float64(nil), x...)
		squashAll(got)
		for i, v := range x {
			want := math.Asinh(v)
			if mathFused && haveAsinh {
				want = asinh(v) // the kernel's, which math.Asinh is only where it fuses nothing
			}
			if math.Float64bits(got[i]) != math.Float64bits(want) {
				t.Fatalf("squash(%v [%#x]) = %v [%#x], math.Asinh %v [%#x]", v, math.Float64bits(v), got[i], math.Float64bits(got[i]), want, math.Float64bits(want))
			}
		}
	}
	check(vals)
	for n := 0; n <= 9; n++ {
		for off := 0; off+n <= 60; off += 7 {
			check(vals[off : off+n])
		}
	}
}
