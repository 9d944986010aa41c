package forecast

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSparseDegrees(t *testing.T) {
	cases := []struct {
		name    string
		span, H int
		want    float64
	}{
		{"many windows", 3000, 12, 0},
		{"exactly minWindows", 5 * 288, 288, 0},
		{"four windows", 4 * 288, 288, sparseTailGain * 4},
		{"two and a half windows", 720, 288, sparseTailGain},
		{"no horizon", 100, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sparseDegrees(tc.span, tc.H); math.Abs(got-tc.want) > 1e-12 {
				t.Fatalf("sparseDegrees(%d, %d) = %v, want %v", tc.span, tc.H, got, tc.want)
			}
		})
	}
	if nu := sparseDegrees(0, 288); !(nu > 0) || tailWiden(nu, 0.9) != maxSparseWiden {
		t.Fatalf("no span: ν = %v, widening %v, want the most widening", nu, tailWiden(nu, 0.9))
	}
}

func TestTailWiden(t *testing.T) {
	// Student-t over Gaussian quantiles: t₅(0.9) = 1.4759 and
	// t₅(0.975) = 2.5706 against 1.2816 and 1.9600.
	for _, tc := range []struct {
		nu, q, want float64
	}{
		{0, 0.9, 1},
		{5, 0.9, 1.4759 / 1.2816},
		{5, 0.1, 1.4759 / 1.2816},
		{5, 0.975, 2.5706 / 1.9600},
		{5, 0.5, 1},
		{1, 0.975, maxSparseWiden}, // Cauchy tails: capped
		{1e6, 0.975, 1},
	} {
		if got := tailWiden(tc.nu, tc.q); math.Abs(got-tc.want) > 1e-3 {
			t.Errorf("tailWiden(%v, %v) = %v, want %v", tc.nu, tc.q, got, tc.want)
		}
	}
	// Fewer degrees of freedom and levels further out widen more.
	for _, nu := range []float64{1.5, 2.5, 4, 8} {
		if a, b := tailWiden(nu, 0.9), tailWiden(nu, 0.975); a > b {
			t.Errorf("ν=%v: 80%% band widened %v, more than the 95%% band's %v", nu, a, b)
		}
		if a, b := tailWiden(nu, 0.9), tailWiden(2*nu, 0.9); a < b {
			t.Errorf("ν=%v widens %v, less than ν=%v's %v", nu, a, 2*nu, b)
		}
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
			m.cal.pooled = nil // TestPooledBands checks the pooled correction
			p, err := m.Forecast(tc.H)
			if err != nil {
				t.Fatal(err)
			}
			checkPrediction(t, "auto", p, tc.H)
			first, _ := calibrationWindow(len(y), tc.H)
			nu := sparseDegrees(len(y)-first, tc.H)
			if tc.widened != (nu > 0) || m.cal.nu != nu {
				t.Fatalf("ν = %v, calibration's %v, for a %d-step horizon on %d points", nu, m.cal.nu, tc.H, len(y))
			}
			if got := strings.Contains(p.Reason, "bands widened"); got != tc.widened {
				t.Fatalf("reason %q: mentions widening %v, want %v", p.Reason, got, tc.widened)
			}
			// Every band is the calibration's without the tails, scaled
			// around the mean by tailWiden at its level, and no band
			// narrows with the horizon.
			plain := m.cal
			plain.nu = 0
			base := plain.predict(p.Model, p.Reason, p.Mean, p.Quantiles, m.widen)
			hi := len(p.Quantiles) - 1
			prev := 0.0
			for h := range p.Mean {
				for i, q := range p.Quantiles {
					got := p.Bands[i][h] - p.Mean[h]
					ref := base.Bands[i][h] - base.Mean[h]
					if f := math.Max(m.widen, tailWiden(nu, q)); math.Abs(got-f*ref) > 1e-9*math.Abs(ref) {
						t.Fatalf("step %d, level %v: half-width %v, want %v×%v", h+1, q, got, f, ref)
					}
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

func TestSelectionWiden(t *testing.T) {
	for _, tc := range []struct{ q, want float64 }{
		{0.5, 1}, {0.3, 1.025}, {0.7, 1.025}, {0.1, 1.05}, {0.9, 1.05},
		{0.0625, 1.075}, {0.025, 1.10}, {0.975, 1.10}, {0.01, 1.10}, {0.99, 1.10},
	} {
		if got := selectionWiden(tc.q); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("selectionWiden(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestAutoWidensForItsChoice(t *testing.T) {
	y := noisyDays(31, 6)
	cases := []struct {
		name string
		H    int
		days float64
		// selected: the backtest spans five horizons, its residuals both
		// chose the model and calibrate the bands
		selected bool
		widen    float64
	}{
		{"hour ahead on six days", 12, 6, true, 1},
		{"day ahead on six days", 288, 6, false, 1}, // Student-t tails instead
		// Under two days the bands are widened ×1.25 (coldWiden) instead,
		// though the backtest spans 18 horizons.
		{"hour ahead on a day and a half", 12, 1.5, false, coldWiden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mustNew(t, "auto", Options{Step: 5 * time.Minute, Horizon: tc.H}).(*autoModel)
			if err := m.Fit(y[:int(tc.days*288)]); err != nil {
				t.Fatal(err)
			}
			if m.widen != tc.widen || m.cal.selected != tc.selected {
				t.Fatalf("widened ×%v, selected %v; want ×%v, %v (%s)", m.widen, m.cal.selected, tc.widen, tc.selected, m.reason)
			}
			m.cal.pooled = nil // TestPooledBands checks the pooled correction
			p, err := m.Forecast(tc.H)
			if err != nil {
				t.Fatal(err)
			}
			plain := m.cal
			plain.selected = false
			base := plain.predict(p.Model, p.Reason, p.Mean, p.Quantiles, m.widen)
			for i, q := range p.Quantiles {
				f := 1.0
				if tc.selected {
					f = selectionWiden(q)
				}
				for h := range p.Mean {
					got, ref := p.Bands[i][h]-p.Mean[h], base.Bands[i][h]-base.Mean[h]
					if math.Abs(got-f*ref) > 1e-9*math.Abs(ref) {
						t.Fatalf("level %v step %d: half-width %v, want %v×%v", q, h+1, got, f, ref)
					}
				}
			}
		})
	}
}

func TestPooledFor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		step  time.Duration
		H     int
		leads []int // MaxLead of the rows, in order; nil: none apply
	}{
		{"five minutes, an hour ahead", 5 * time.Minute, 12, []int{12}},
		{"five minutes, shorter than an hour", 5 * time.Minute, 6, []int{12}},
		{"five minutes, four hours ahead", 5 * time.Minute, 48, []int{12, 72, 288}},
		{"five minutes, a day ahead", 5 * time.Minute, 288, []int{12, 72, 288}},
		{"five minutes, beyond a day", 5 * time.Minute, 289, nil},
		{"one minute: nothing was learnt", time.Minute, 60, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := pooledFor(tc.step, tc.H)
			var leads []int
			for _, r := range rows {
				leads = append(leads, r.MaxLead)
			}
			if !slices.Equal(leads, tc.leads) {
				t.Fatalf("rows with leads %v, want %v", leads, tc.leads)
			}
		})
	}
}

func TestPooledWiden(t *testing.T) {
	rows := []pooledRow{{MaxLead: 12, F80: 0.9, F95: 1.2}, {MaxLead: 288, F80: 1.1, F95: 1.3}}
	for _, tc := range []struct {
		lead    int
		q, want float64
	}{
		{0, 0.5, 1}, {0, 0.9, 0.9}, {0, 0.1, 0.9}, {0, 0.3, 0.95}, {0, 0.975, 1.2}, {0, 0.01, 1.2},
		{0, 0.0625, 1.05}, {11, 0.9, 0.9}, {12, 0.9, 1.1}, {287, 0.975, 1.3}, {400, 0.025, 1.3},
	} {
		if got := pooledWiden(rows, tc.lead, tc.q); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("lead %d, level %v: %v, want %v", tc.lead, tc.q, got, tc.want)
		}
	}
	if got := pooledWiden(nil, 3, 0.9); got != 1 {
		t.Errorf("no rows: %v, want 1", got)
	}
}

// TestPooledBands checks that auto applies the pooled correction to a
// five-minute series: every band's distance from the median is the
// uncorrected one times pooledWiden at its lead time and level, the
// median stays; a one-minute series has no correction.
func TestPooledBands(t *testing.T) {
	y := noisyDays(31, 6)
	for _, H := range []int{12, 48, 288} {
		t.Run(fmt.Sprintf("H=%d", H), func(t *testing.T) {
			m := mustNew(t, "auto", Options{Step: 5 * time.Minute, Horizon: H}).(*autoModel)
			if err := m.Fit(y); err != nil {
				t.Fatal(err)
			}
			if len(m.cal.pooled) == 0 {
				t.Fatal("no pooled correction for a five-minute series")
			}
			p, err := m.Forecast(H)
			if err != nil {
				t.Fatal(err)
			}
			plain := m.cal
			plain.pooled = nil
			base := plain.predict(p.Model, p.Reason, p.Mean, p.Quantiles, m.widen)
			med, baseMed := p.Quantile(0.5), base.Quantile(0.5)
			for i, q := range p.Quantiles {
				for h := range p.Mean {
					if med[h] != baseMed[h] {
						t.Fatalf("step %d: median %v, uncorrected %v", h+1, med[h], baseMed[h])
					}
					got, ref := p.Bands[i][h]-med[h], base.Bands[i][h]-baseMed[h]
					if f := pooledWiden(m.cal.pooled, h, q); math.Abs(got-f*ref) > 1e-9*math.Max(1, math.Abs(ref)) {
						t.Fatalf("level %v step %d: %v from the median, want %v×%v", q, h+1, got, f, ref)
					}
				}
			}
		})
	}
	m := mustNew(t, "auto", Options{Step: time.Minute, Horizon: 60}).(*autoModel)
	if err := m.Fit(y); err != nil {
		t.Fatal(err)
	}
	if m.cal.pooled != nil {
		t.Fatalf("one-minute series: pooled rows %v, want none", m.cal.pooled)
	}
}
