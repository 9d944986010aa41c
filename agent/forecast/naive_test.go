package forecast

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestNewUnknown(t *testing.T) {
	_, err := New("prophet", Options{})
	if !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("New(prophet) = %v, want ErrUnknownModel", err)
	}
	for _, name := range Models() {
		if _, err := New(name, Options{}); err != nil {
			t.Errorf("New(%q): %v", name, err)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"quantile 1":      {Quantiles: []float64{0.5, 1}},
		"negative step":   {Step: -time.Minute},
		"negative season": {Seasonality: []time.Duration{-time.Hour}},
		"negative refit":  {RefitEvery: -1},
	} {
		if _, err := New("auto", o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	p := fitForecast(t, "naive", Options{Quantiles: []float64{0.9, 0.1, 0.5}}, []float64{1, 2, 3, 4}, 2)
	if len(p.Quantiles) != 3 || p.Quantiles[0] != 0.1 || p.Quantiles[2] != 0.9 {
		t.Fatalf("quantiles %v, want 0.1 0.5 0.9", p.Quantiles)
	}
}

func TestNaiveLastValue(t *testing.T) {
	y := []float64{1, 5, 3, math.NaN(), 7}
	p := fitForecast(t, "naive", fiveMin, y, 3)
	for s, v := range p.Mean {
		if v != 7 {
			t.Fatalf("step %d: %v, want 7", s, v)
		}
	}
	f := mustNew(t, "naive", fiveMin)
	if err := f.Fit(y); err != nil {
		t.Fatal(err)
	}
	f.Update(9, math.NaN())
	p, _ = f.Forecast(2)
	if p.Mean[0] != 9 || p.Mean[1] != 9 {
		t.Fatalf("after update: %v, want 9s (NaN ignored)", p.Mean)
	}
}

func TestSeasonalNaivePeriod(t *testing.T) {
	o := Options{Step: time.Hour, Horizon: 30}
	tests := []struct {
		name   string
		n      int
		wantIn string
	}{
		{"two days uses the daily period", 48, "(24)"},
		{"half a day falls back to lag 1", 12, "lag 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := make([]float64, tc.n)
			for i := range y {
				y[i] = float64(i % 24)
			}
			p := fitForecast(t, "seasonal-naive", o, y, 30)
			if !strings.Contains(p.Model, tc.wantIn) {
				t.Fatalf("model %q, want it to contain %q", p.Model, tc.wantIn)
			}
			for s, v := range p.Mean {
				want := float64((tc.n + s) % 24)
				if tc.wantIn == "lag 1" {
					want = y[tc.n-1]
				}
				if v != want {
					t.Fatalf("step %d: %v, want %v", s, v, want)
				}
			}
		})
	}
}

func TestSeasonalNaiveUpdate(t *testing.T) {
	o := Options{Step: time.Hour, Horizon: 24}
	y := seasonal(24*5, 24, 10, 50)
	f := mustNew(t, "seasonal-naive", o)
	if err := f.Fit(y[:24*3]); err != nil {
		t.Fatal(err)
	}
	f.Update(y[24*3 : 24*4]...)
	p, _ := f.Forecast(24)
	for s := range p.Mean {
		if math.Abs(p.Mean[s]-y[24*4+s]) > 1e-9 {
			t.Fatalf("step %d: %v, want %v", s, p.Mean[s], y[24*4+s])
		}
	}
}

func TestBaselineConstantZeroWidth(t *testing.T) {
	for _, name := range []string{"naive", "seasonal-naive"} {
		p := fitForecast(t, name, fiveMin, constant(600, 42), 12)
		for i := range p.Bands {
			for s, v := range p.Bands[i] {
				if math.Abs(v-42) > 1e-9 {
					t.Fatalf("%s: band %v step %d = %v, want 42", name, p.Quantiles[i], s, v)
				}
			}
		}
	}
}

func TestNaiveCoverageRandomWalk(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	y := randomWalk(r, 3000, 1)
	o := Options{Step: 5 * time.Minute, Horizon: 6}
	c80 := coverage(t, "naive", o, y, 1500, 6, 6, 0.1, 0.9)[0]
	if c80 < 0.72 || c80 > 0.88 {
		t.Fatalf("coverage of the 80%% band on a random walk = %.3f, want about 0.80", c80)
	}
}

func TestTooShort(t *testing.T) {
	for _, name := range Models() {
		f := mustNew(t, name, fiveMin)
		if err := f.Fit([]float64{1, math.NaN()}); !errors.Is(err, ErrTooShort) {
			t.Errorf("%s: Fit(2 points) = %v, want ErrTooShort", name, err)
		}
		if _, err := f.Forecast(3); !errors.Is(err, ErrTooShort) {
			t.Errorf("%s: Forecast before Fit = %v, want ErrTooShort", name, err)
		}
	}
}

func TestCalibrationFromResiduals(t *testing.T) {
	// Residuals at step h are h·z for the same 101 values z = −50…50: the
	// scale grows linearly with h, the normalised shape is uniform, and
	// the band at level q and step h is mean + h·quantile(z)/mean|z|.
	H := 4
	res := make([][]float64, H)
	var absMean float64
	for i := -50; i <= 50; i++ {
		absMean += math.Abs(float64(i))
	}
	absMean /= 101
	for h := range res {
		for i := -50; i <= 50; i++ {
			res[h] = append(res[h], float64(h+1)*float64(i))
		}
	}
	cal := calibrationFrom(res, nil)
	if cal.fallback {
		t.Fatal("fell back with plenty of residuals")
	}
	p := cal.predict("m", "r", make([]float64, H), []float64{0.1, 0.5, 0.9}, 1)
	for h := 0; h < H; h++ {
		if s := cal.scaleAt(h); math.Abs(s-float64(h+1)*absMean) > 1e-9*absMean {
			t.Fatalf("scale at step %d = %v, want %v", h+1, s, float64(h+1)*absMean)
		}
		// Conformal level for 0.9 with n = 404 pooled residuals is
		// 0.9·405/404; the quantile of the uniform −50…50 shape there is
		// about 40.1 (times h).
		hi := p.Bands[2][h] / float64(h+1)
		if hi < 39.5 || hi > 41 {
			t.Fatalf("p90 at step %d = %v, want about 40.1·h", h+1, p.Bands[2][h])
		}
		if lo := p.Bands[0][h] / float64(h+1); math.Abs(lo+hi) > 1 {
			t.Fatalf("p10 %v not symmetric to p90 %v", p.Bands[0][h], p.Bands[2][h])
		}
		if math.Abs(p.Bands[1][h]) > 1e-9 {
			t.Fatalf("p50 at step %d = %v, want 0", h+1, p.Bands[1][h])
		}
	}
	// With too few residuals it falls back to the spread of differences.
	cold := calibrationFrom(make([][]float64, H), []float64{1, 3, 2, 4})
	if !cold.fallback || cold.scaleAt(0) != 5.0/3 {
		t.Fatalf("fallback scale %v, want 5/3 (mean |Δy|)", cold.scaleAt(0))
	}
}
