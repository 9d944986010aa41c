package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestShapeAVXMatchesGo holds the shape statistic's AVX loops to its Go
// loops bit for bit: the distance updates (with entries whose update
// cancels most of their digits) and the nearest references.
func TestShapeAVXMatchesGo(t *testing.T) {
	if !haveAVX {
		t.Skip("no AVX on this machine")
	}
	defer func(h bool) { haveAVX = h }(haveAVX)
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := 0; trial < 400; trial++ {
		n := rng.IntN(70)
		scale := math.Pow(10, float64(rng.IntN(12)-4))
		d, xa, xb := make([]float64, n), make([]float64, n), make([]float64, n)
		for i := range d {
			xa[i], xb[i] = scale*rng.NormFloat64(), scale*rng.NormFloat64()
			d[i] = scale * scale * rng.Float64() * 20
		}
		a, b := scale*rng.NormFloat64(), scale*rng.NormFloat64()
		for i := range d {
			if rng.IntN(5) == 0 {
				// The shape leaving holds all of the distance: the
				// update cancels it.
				v := b - xb[i]
				d[i] = v * v
				xa[i] = a
			}
		}
		want, got := slices.Clone(d), slices.Clone(d)
		haveAVX = false
		wantC := updateDistances(want, xa, xb, a, b)
		haveAVX = true
		gotC := updateDistances(got, xa, xb, a, b)
		if gotC != wantC {
			t.Fatalf("trial %d: cancelled %v, Go says %v", trial, gotC, wantC)
		}
		for i := range want {
			if math.IsNaN(got[i]) != math.IsNaN(want[i]) || !math.IsNaN(want[i]) && math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Fatalf("trial %d entry %d: %v, Go gives %v", trial, i, got[i], want[i])
			}
		}

		// Nearest references, with ties and entries below zero.
		for i := range d {
			d[i] = float64(rng.IntN(30)) - 2
		}
		for _, stride := range []int{1, 2, 3} {
			for k := 1; k <= 4; k++ {
				haveAVX = false
				wantN := slices.Clone(nearestOf(nil, k, d, stride))
				haveAVX = true
				gotN := nearestOf(nil, k, d, stride)
				var brute []float64
				for i := n - 1; i >= 0; i -= stride {
					brute = append(brute, max(d[i], 0))
				}
				slices.Sort(brute)
				brute = brute[:min(k, len(brute))]
				if !slices.Equal(gotN, wantN) || !slices.Equal(wantN, brute) {
					t.Fatalf("trial %d stride %d k %d: nearest %v, Go %v, by definition %v", trial, stride, k, gotN, wantN, brute)
				}
			}
		}
	}
}
