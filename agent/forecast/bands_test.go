package forecast

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestSparseWiden(t *testing.T) {
	cases := []struct {
		name    string
		span, H int
		want    float64
	}{
		{"many windows", 3000, 12, 1},
		{"exactly minWindows", 5 * 288, 288, 1},
		{"four windows", 4 * 288, 288, 1.25},
		{"below the cap", 3 * 288, 288, 5.0 / 3},
		{"capped", 806, 288, maxSparseWiden},
		{"no span", 0, 288, maxSparseWiden},
		{"no horizon", 100, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sparseWiden(tc.span, tc.H); math.Abs(got-tc.want) > 1e-12 {
				t.Fatalf("sparseWiden(%d, %d) = %v, want %v", tc.span, tc.H, got, tc.want)
			}
		})
	}
}

// noisyDays is d days of a 5-minute daily pattern with Gaussian noise.
func noisyDays(seed uint64, d int) []float64 {
	r := rand.New(rand.NewPCG(seed, seed+1))
	y := seasonal(d*288, 288, 10, 50)
	for i := range y {
		y[i] += 2 * r.NormFloat64()
	}
	return y
}

func TestAutoWidensSparseBacktest(t *testing.T) {
	y := noisyDays(31, 6)
	cases := []struct {
		name    string
		H       int
		widened bool
	}{
		// Six days at a one-day horizon: the origins span the last three
		// days, three independent windows.
		{"day ahead on six days", 288, true},
		{"hour ahead on six days", 12, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Step: 5 * time.Minute, Horizon: tc.H}
			m := mustNew(t, "auto", o).(*autoModel)
			if err := m.Fit(y); err != nil {
				t.Fatal(err)
			}
			p, err := m.Forecast(tc.H)
			if err != nil {
				t.Fatal(err)
			}
			checkPrediction(t, "auto", p, tc.H)
			first, _ := calibrationWindow(len(y), tc.H)
			want := sparseWiden(len(y)-first, tc.H)
			if tc.widened != (want > 1) {
				t.Fatalf("sparseWiden = %v for a %d-step horizon on %d points", want, tc.H, len(y))
			}
			if math.Abs(m.widen-math.Max(1, want)) > 1e-12 {
				t.Fatalf("widen = %v, want %v", m.widen, want)
			}
			if got := strings.Contains(p.Reason, "bands widened"); got != tc.widened {
				t.Fatalf("reason %q: mentions widening %v, want %v", p.Reason, got, tc.widened)
			}
			// Every band is the unwidened calibration's, scaled by widen
			// around the mean, and no band narrows with the horizon.
			base := m.cal.predict(p.Model, p.Reason, p.Mean, p.Quantiles, 1)
			hi := len(p.Quantiles) - 1
			prev := 0.0
			for h := range p.Mean {
				got := p.Bands[hi][h] - p.Mean[h]
				ref := base.Bands[hi][h] - base.Mean[h]
				if math.Abs(got-m.widen*ref) > 1e-9*math.Abs(ref) {
					t.Fatalf("step %d: upper half-width %v, want %v×%v", h+1, got, m.widen, ref)
				}
				if w := p.Bands[hi][h] - p.Bands[0][h]; w < prev-1e-9 {
					t.Fatalf("step %d: band width %v narrower than %v before", h+1, w, prev)
				} else {
					prev = w
				}
			}
		})
	}
}
