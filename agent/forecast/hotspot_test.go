package forecast

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/internal/num"
)

func rampPrediction() Prediction {
	// Mean rises 10 per step; bands ±10 (p10/p90) and ±20 (p2.5/p97.5).
	p := Prediction{Model: "test", Quantiles: []float64{0.025, 0.1, 0.5, 0.9, 0.975}}
	offs := []float64{-20, -10, 0, 10, 20}
	for _, o := range offs {
		b := make([]float64, 6)
		for t := range b {
			b[t] = 50 + 10*float64(t+1) + o
		}
		p.Bands = append(p.Bands, b)
	}
	p.Mean = p.Bands[2]
	return p
}

func TestFindHotspot(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		line, q  float64
		crosses  bool
		step     int
		probLow  float64
		probHigh float64
	}{
		// p90 at step t is 60+10t: over 99 from step 4.
		{"p90 over the line at step 4", 99, 0.9, true, 4, 0.87, 0.95},
		// p90 is exactly at 100 at step 4 and over it at step 5: a
		// quantile at the line keeps its headroom, it crosses after.
		{"p90 at the line at step 4 crosses at step 5", 100, 0.9, true, 5, 0.85, 0.95},
		// The median is over 109 at step 6: P(exceed) there about 0.5.
		{"median at the last step", 109, 0.5, true, 6, 0.5, 0.56},
		// The median reaches 110 at the last step and no further: at the
		// line is no crossing, though half the mass is above it.
		{"median at the line at the last step", 110, 0.5, false, 0, 0.49, 0.51},
		// Far above every band: no crossing, tiny probability.
		{"line far above", 1000, 0.9, false, 0, 0, 1e-6},
		// Interpolated planning level between 0.5 and 0.9: p70 at step t
		// is 55+10t, at 95 at step 4, over it at step 5.
		{"interpolated level", 94, 0.7, true, 4, 0.93, 0.95},
		{"interpolated level at the line", 95, 0.7, true, 5, 0.93, 0.94},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := FindHotspot(rampPrediction(), start, 5*time.Minute, tc.line, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if h.Crosses != tc.crosses || h.Step != tc.step {
				t.Fatalf("crosses=%v step=%d, want %v %d", h.Crosses, h.Step, tc.crosses, tc.step)
			}
			if tc.crosses && !h.At.Equal(start.Add(time.Duration(tc.step)*5*time.Minute)) {
				t.Fatalf("at %v", h.At)
			}
			if h.Probability < tc.probLow || h.Probability > tc.probHigh {
				t.Fatalf("probability %.4f, want in [%v, %v]", h.Probability, tc.probLow, tc.probHigh)
			}
		})
	}
	if _, err := FindHotspot(rampPrediction(), start, time.Minute, 1, 1.5); err == nil {
		t.Fatal("planning quantile 1.5 accepted")
	}
}

func TestExceedanceMonotone(t *testing.T) {
	levels := []float64{0.025, 0.1, 0.5, 0.9, 0.975}
	vals := []float64{-20, -10, 0, 10, 20}
	prev := 1.0
	for x := -60.0; x <= 60; x += 0.5 {
		p := exceedance(levels, vals, x)
		if p > prev+1e-12 || p < 0 || p > 1 {
			t.Fatalf("P(Y > %v) = %v after %v", x, p, prev)
		}
		prev = p
	}
	if p := exceedance(levels, vals, 10); math.Abs(p-0.1) > 1e-12 {
		t.Fatalf("P(Y > p90) = %v, want 0.1", p)
	}
}

func TestCharacterise(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	step := 5 * time.Minute
	diurnal := seasonal(288*4, 288, 20, 50)
	flat := make([]float64, 288*4)
	bursty := make([]float64, 288*4)
	for i := range flat {
		diurnal[i] += r.NormFloat64()
		flat[i] = 40 + r.NormFloat64()
		bursty[i] = 10 + 0.5*r.NormFloat64()
		if i%37 == 0 {
			bursty[i] += 80
		}
	}
	for name, tc := range map[string]struct {
		y    []float64
		want WorkloadKind
	}{"diurnal": {diurnal, Diurnal}, "flat": {flat, Flat}, "bursty": {bursty, Bursty}} {
		if got := Characterise(tc.y, step); got.Kind != tc.want {
			t.Errorf("%s: got %+v, want %s", name, got, tc.want)
		}
	}
}

func TestClassifyBias(t *testing.T) {
	tests := []struct {
		name string
		got  Bias
		want Bias
	}{
		{"reads dominate", ClassifyIO(constant(10, 300), constant(10, 100)), ReadHeavy},
		{"writes dominate", ClassifyIO(constant(10, 10), constant(10, 100)), WriteHeavy},
		{"io balanced", ClassifyIO(constant(10, 100), constant(10, 120)), Balanced},
		{"cpu bound", ClassifyBound(constant(10, 90), constant(10, 30)), CPUBound},
		{"memory bound", ClassifyBound(constant(10, 20), constant(10, 85)), MemoryBound},
		{"missing memory", ClassifyBound(constant(10, 20), []float64{math.NaN()}), Balanced},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}

func TestMedianSelect(t *testing.T) {
	r := rand.New(rand.NewPCG(60, 61))
	for n := 1; n < 60; n++ {
		x := make([]float64, n)
		for i := range x {
			x[i] = math.Round(r.NormFloat64() * 3) // many ties
		}
		s := append([]float64(nil), x...)
		sortFloats(s)
		want := num.QuantileSorted(s, 0.5)
		if got := num.Median(append([]float64(nil), x...)); got != want {
			t.Fatalf("n=%d: median %v, want %v (%v)", n, got, want, x)
		}
		for k := 0; k < n; k++ {
			if got := num.SelectK(append([]float64(nil), x...), k); got != s[k] {
				t.Fatalf("n=%d: select(%d) = %v, want %v", n, k, got, s[k])
			}
		}
	}
}

func sortFloats(x []float64) { sort.Float64s(x) }
