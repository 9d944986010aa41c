package forecast

import (
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast/anomaly"
)

func TestSESHandComputed(t *testing.T) {
	// ETS(A,N,N) is simple exponential smoothing: l(t) = l(t-1) + α·e(t).
	// With α = 0.5 and l0 = 10 on 10, 12, 11, 13 the levels are 10, 11,
	// 11, 12, the one-step errors 0, 2, 0, 2 and the SSE 8.
	y := []float64{10, 12, 11, 13}
	var st etsState
	sse, n := etsRun(y, etsSpec{}, etsParams{alpha: 0.5, phi: 1}, etsState{l: 10}, &st)
	if sse != 8 || n != 4 {
		t.Fatalf("SSE = %v over %d, want 8 over 4", sse, n)
	}
	c := &etsCore{spec: etsSpec{}, p: etsParams{alpha: 0.5, phi: 1}, init: etsState{l: 10}}
	c.reset()
	for _, v := range y {
		c.observe(v)
	}
	out := make([]float64, 3)
	c.forecast(out)
	for h, v := range out {
		if v != 12 {
			t.Fatalf("step %d: %v, want 12", h+1, v)
		}
	}
}

func TestDampedTrendForecast(t *testing.T) {
	// ŷ(n+h) = l + (φ + … + φ^h)·b.
	c := &etsCore{spec: etsSpec{trend: true, damped: true}, p: etsParams{alpha: 0.5, beta: 0.1, phi: 0.9}, st: etsState{l: 100, b: 10}}
	out := make([]float64, 3)
	c.forecast(out)
	want := []float64{100 + 9, 100 + 9 + 8.1, 100 + 9 + 8.1 + 7.29}
	for h := range out {
		if math.Abs(out[h]-want[h]) > 1e-9 {
			t.Fatalf("step %d: %v, want %v", h+1, out[h], want[h])
		}
	}
}

func simulateETS(r *rand.Rand, n int, spec etsSpec, p etsParams, init etsState, sigma float64) []float64 {
	st := etsState{}
	st.copyFrom(init)
	y := make([]float64, n)
	for i := range y {
		f := st.l + p.phi*st.b
		if spec.seasonal() {
			f += st.s[st.n%spec.m]
		}
		y[i] = f + sigma*r.NormFloat64()
		etsStep(spec, p, &st, y[i])
	}
	return y
}

func TestETSRecoversParameters(t *testing.T) {
	tests := []struct {
		name string
		spec etsSpec
		p    etsParams
		init etsState
	}{
		{"simple smoothing", etsSpec{}, etsParams{alpha: 0.3, phi: 1}, etsState{l: 50}},
		{"additive season", etsSpec{m: 12}, etsParams{alpha: 0.2, phi: 1, gamma: 0.1},
			etsState{l: 50, s: []float64{5, 8, 9, 8, 5, 0, -5, -8, -9, -8, -5, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 11))
			y := simulateETS(r, 3000, tc.spec, tc.p, tc.init, 1)
			c := newETS(tc.spec)
			if err := c.fit(y); err != nil {
				t.Fatal(err)
			}
			if math.Abs(c.p.alpha-tc.p.alpha) > 0.06 {
				t.Errorf("alpha = %.3f, want %.2f", c.p.alpha, tc.p.alpha)
			}
			if tc.spec.seasonal() && math.Abs(c.p.gamma-tc.p.gamma) > 0.06 {
				t.Errorf("gamma = %.3f, want %.2f", c.p.gamma, tc.p.gamma)
			}
		})
	}
}

func TestETSSelectsByAICc(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	// A strong linear trend: a trended model must beat ETS(A,N,N).
	y := make([]float64, 1000)
	for i := range y {
		y[i] = 10 + 0.5*float64(i) + r.NormFloat64()
	}
	b, err := fitBestETS(y, nonSeasonalETS)
	if err != nil {
		t.Fatal(err)
	}
	if !b.spec.trend {
		t.Fatalf("chose %s for a trended series", b.spec)
	}
}

func TestKPSS(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	noise := make([]float64, 1000)
	for i := range noise {
		noise[i] = r.NormFloat64()
	}
	walk := randomWalk(r, 1000, 1)
	if s := KPSS(noise); s > kpssCritical5 {
		t.Errorf("KPSS(white noise) = %.3f, want below %.3f", s, kpssCritical5)
	}
	if s := KPSS(walk); s < kpssCritical5 {
		t.Errorf("KPSS(random walk) = %.3f, want above %.3f", s, kpssCritical5)
	}
	if d := ndiffs(walk); d != 1 {
		t.Errorf("ndiffs(random walk) = %d, want 1", d)
	}
	if d := ndiffs(noise); d != 0 {
		t.Errorf("ndiffs(white noise) = %d, want 0", d)
	}
}

func ar1(r *rand.Rand, n int, phi, mu float64) []float64 {
	y := make([]float64, n)
	v := 0.0
	for i := range y {
		v = phi*v + r.NormFloat64()
		y[i] = mu + v
	}
	return y
}

func TestARIMARecoversAR1(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	y := ar1(r, 3000, 0.7, 20)
	c := fitARIMA(y, arimaOrder{p: 1, constant: true}, 1, nmConvIters)
	if math.Abs(c.phi[0]-0.7) > 0.04 {
		t.Errorf("CSS phi = %.3f, want 0.7", c.phi[0])
	}
	if math.Abs(c.mu-20) > 0.3 {
		t.Errorf("CSS mean = %.3f, want 20", c.mu)
	}
	o := fitAROLS(y, 1, true, 0)
	if math.Abs(o.phi[0]-0.7) > 0.04 || math.Abs(o.mu-20) > 0.3 {
		t.Errorf("OLS phi, mean = %.3f, %.3f, want 0.7, 20", o.phi[0], o.mu)
	}
	a, err := autoARIMA(y)
	if err != nil {
		t.Fatal(err)
	}
	if a.ord.d != 0 || a.ord.p < 1 {
		t.Errorf("auto order %s, want d=0 and an AR term", a.ord)
	}
	// The forecast decays geometrically to the mean: ŷ(n+h) − μ = φ^h (y(n) − μ).
	a2 := &arimaCore{ord: arimaOrder{p: 1, constant: true}, phi: []float64{0.5}, mu: 10}
	a2.reset()
	a2.observe(18)
	out := make([]float64, 3)
	a2.forecast(out)
	for h, want := range []float64{14, 12, 11} {
		if math.Abs(out[h]-want) > 1e-9 {
			t.Fatalf("AR(1) step %d: %v, want %v", h+1, out[h], want)
		}
	}
}

func TestARIMAIntegrates(t *testing.T) {
	// ARIMA(0,1,0) with drift 2: each step adds 2 to the last level.
	c := &arimaCore{ord: arimaOrder{d: 1, constant: true}, mu: 2}
	c.reset()
	for _, v := range []float64{1, 3, 5, 7} {
		c.observe(v)
	}
	out := make([]float64, 3)
	c.forecast(out)
	for h, want := range []float64{9, 11, 13} {
		if out[h] != want {
			t.Fatalf("step %d: %v, want %v", h+1, out[h], want)
		}
	}
}

func TestPACFTransformStationary(t *testing.T) {
	for _, r := range [][]float64{{0.9}, {0.5, -0.5}, {0.99, 0.99, -0.99}} {
		phi := make([]float64, len(r))
		pacfToCoef(r, phi)
		if !stationaryAR(phi) {
			t.Errorf("pacf %v gave non-stationary %v", r, phi)
		}
	}
	if stationaryAR([]float64{1.2}) || stationaryAR([]float64{0.5, 0.6}) {
		t.Error("non-stationary polynomial passed the check")
	}
}

func TestThetaLinearTrend(t *testing.T) {
	// On a noiseless line y = 5 + 2t, SES tracks with α → 1 and the theta
	// forecast is the last value plus half the slope per step (the mean of
	// the extrapolated trend line and the flat SES forecast of the theta=2
	// line).
	y := make([]float64, 200)
	for i := range y {
		y[i] = 5 + 2*float64(i)
	}
	c := &thetaCore{}
	if err := refit(c, y); err != nil {
		t.Fatal(err)
	}
	out := make([]float64, 5)
	c.forecast(out)
	last := y[len(y)-1]
	for h := range out {
		want := last + 1*float64(h+1)
		if math.Abs(out[h]-want) > 0.05 {
			t.Fatalf("step %d: %.3f, want %.3f", h+1, out[h], want)
		}
	}
}

func TestConstantForecastIsConstant(t *testing.T) {
	for _, name := range Models() {
		t.Run(name, func(t *testing.T) {
			p := fitForecast(t, name, fiveMin, constant(700, 42), 12)
			for s := range p.Mean {
				if math.Abs(p.Mean[s]-42) > 1e-6 {
					t.Fatalf("mean step %d = %v, want 42", s, p.Mean[s])
				}
				for i := range p.Bands {
					if math.Abs(p.Bands[i][s]-42) > 1e-3 {
						t.Fatalf("band q%v step %d = %v, want 42", p.Quantiles[i], s, p.Bands[i][s])
					}
				}
			}
		})
	}
}

func TestSeasonalForecastIsTheSeason(t *testing.T) {
	o := Options{Step: 5 * time.Minute, Horizon: 48}
	m := 288
	y := seasonal(4*m+100, m, 20, 60)
	for _, name := range []string{"seasonal-naive", "mstl", "theta", "arima", "auto"} {
		t.Run(name, func(t *testing.T) {
			p := fitForecast(t, name, o, y, 48)
			for s := range p.Mean {
				want := seasonal(len(y)+s+1, m, 20, 60)[len(y)+s]
				if math.Abs(p.Mean[s]-want) > 0.5 {
					t.Fatalf("%s step %d = %.3f, want %.3f", p.Model, s, p.Mean[s], want)
				}
			}
		})
	}
	// A short season goes into ETS seasonal states.
	oh := Options{Step: time.Hour, Horizon: 24}
	yh := seasonal(24*20, 24, 10, 30)
	p := fitForecast(t, "ets", oh, yh, 24)
	if !strings.Contains(p.Model, "A24") {
		t.Fatalf("ets on an hourly daily season chose %s", p.Model)
	}
	for s := range p.Mean {
		want := seasonal(len(yh)+s+1, 24, 10, 30)[len(yh)+s]
		if math.Abs(p.Mean[s]-want) > 0.5 {
			t.Fatalf("ets step %d = %.3f, want %.3f", s, p.Mean[s], want)
		}
	}
}

func TestFiniteOnAwkwardSeries(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	withNaN := seasonal(900, 288, 5, 20)
	for i := range withNaN {
		if r.Float64() < 0.1 {
			withNaN[i] = math.NaN()
		}
	}
	for i := 300; i < 340; i++ {
		withNaN[i] = math.NaN()
	}
	huge := make([]float64, 600)
	for i := range huge {
		huge[i] = 1e12 * (1 + 0.1*r.NormFloat64())
	}
	spiky := make([]float64, 600)
	for i := range spiky {
		if i%50 == 0 {
			spiky[i] = 1000
		}
	}
	cases := map[string][]float64{
		"nan":      withNaN,
		"zeros":    constant(600, 0),
		"huge":     huge,
		"spiky":    spiky,
		"short5":   {1, 2, 3, 2, 1},
		"short50":  randomWalk(r, 50, 1),
		"leadsNaN": append([]float64{math.NaN(), math.NaN()}, randomWalk(r, 40, 1)...),
	}
	for _, name := range Models() {
		for cname, y := range cases {
			t.Run(name+"/"+cname, func(t *testing.T) {
				f := mustNew(t, name, fiveMin)
				if err := f.Fit(y); err != nil {
					t.Fatalf("Fit: %v", err)
				}
				p, err := f.Forecast(20)
				if err != nil {
					t.Fatal(err)
				}
				checkPrediction(t, name, p, 20)
				f.Update(math.NaN(), 1, math.Inf(1))
				p, err = f.Forecast(5)
				if err != nil {
					t.Fatal(err)
				}
				checkPrediction(t, name, p, 5)
			})
		}
	}
}

func TestAutoCoverageOnNoise(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	y := make([]float64, 2600)
	for i := range y {
		y[i] = 50 + 3*r.NormFloat64()
	}
	c := coverage(t, "auto", fiveMin, y, 2000, 12, 24, 0.1, 0.9, 0.025, 0.975)
	c80, c95 := c[0], c[1]
	if c80 < 0.74 || c80 > 0.86 {
		t.Errorf("80%% band covers %.3f of white noise", c80)
	}
	if c95 < 0.90 || c95 > 0.99 {
		t.Errorf("95%% band covers %.3f of white noise", c95)
	}
}

func TestAutoColdStart(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	y := seasonal(200, 288, 5, 20) // under one day of 5-minute data
	for i := range y {
		y[i] += r.NormFloat64()
	}
	p := fitForecast(t, "auto", fiveMin, y, 12)
	if !strings.Contains(p.Reason, "cold start") {
		t.Fatalf("reason %q does not say cold start", p.Reason)
	}
	if strings.Contains(p.Model, "mstl") || strings.Contains(p.Model, "seasonal") {
		t.Fatalf("cold start chose seasonal %s", p.Model)
	}
	// Bands are wider than the same model's with a full history would be:
	// the widening factor is applied.
	f := mustNew(t, "auto", fiveMin).(*autoModel)
	if err := f.Fit(y); err != nil {
		t.Fatal(err)
	}
	if f.widen <= 1 {
		t.Fatalf("cold start widen = %v, want > 1", f.widen)
	}
}

func TestAutoAfterLevelShift(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	tests := []struct {
		name  string
		after int
	}{
		{"long segment after the shift", 700},
		{"short segment after the shift", 120},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var y []float64
			for i := 0; i < 1500; i++ {
				y = append(y, 10+r.NormFloat64())
			}
			for i := 0; i < tc.after; i++ {
				y = append(y, 60+r.NormFloat64())
			}
			p := fitForecast(t, "auto", fiveMin, y, 12)
			for s, v := range p.Mean {
				if math.Abs(v-60) > 3 {
					t.Fatalf("step %d: %.2f, want about 60 (%s; %s)", s, v, p.Model, p.Reason)
				}
			}
			if !strings.Contains(p.Reason, "level shift") {
				t.Fatalf("reason %q does not mention the level shift", p.Reason)
			}
			if lo := p.Quantile(0.1); lo[0] < 50 {
				t.Fatalf("p10 at step 1 = %.2f: the old level still dominates the bands", lo[0])
			}
		})
	}
}

// TestReasonSaysWhenTheLastShiftWas: a forecast's reason says how long
// before its origin the last level shift was, in points and time, counting
// the points observed since the fit; a history without a shift says none.
func TestReasonSaysWhenTheLastShiftWas(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	var y []float64
	for i := 0; i < 1500; i++ {
		y = append(y, 10+r.NormFloat64())
	}
	const after = 120
	for i := 0; i < after; i++ {
		y = append(y, 60+r.NormFloat64())
	}
	age := regexp.MustCompile(`the last level shift (\d+) points \(([^)]+)\) before the origin`)
	for _, name := range []string{"auto", "ets"} {
		t.Run(name, func(t *testing.T) {
			f := mustNew(t, name, fiveMin)
			if err := f.Fit(y); err != nil {
				t.Fatal(err)
			}
			at := func() (int, string) {
				t.Helper()
				p, err := f.Forecast(12)
				if err != nil {
					t.Fatal(err)
				}
				m := age.FindStringSubmatch(p.Reason)
				if m == nil {
					t.Fatalf("reason %q does not say when the last level shift was", p.Reason)
				}
				n, _ := strconv.Atoi(m[1])
				return n, m[2]
			}
			n, d := at()
			// The detector places the shift within its window of the
			// constructed one.
			if n < after-anomaly.DefaultLevelShiftWindow || n > after+anomaly.DefaultLevelShiftWindow {
				t.Fatalf("shift %d points before the origin, want about %d", n, after)
			}
			if want := (time.Duration(n) * fiveMin.Step).String(); d != want {
				t.Fatalf("shift %s before the origin, want %s (%d points of 5 minutes)", d, want, n)
			}
			f.Update(60, 61, 59, 60, 60, 61, 59)
			if n2, d2 := at(); n2 != n+7 || d2 != (time.Duration(n+7)*fiveMin.Step).String() {
				t.Fatalf("after 7 more points: %d points (%s) before the origin, want %d", n2, d2, n+7)
			}
			// Refitted on the history up to now, the age is the same.
			now := append(append([]float64(nil), y...), 60, 61, 59, 60, 60, 61, 59)
			if err := f.Fit(now); err != nil {
				t.Fatal(err)
			}
			if n3, _ := at(); n3 != n+7 {
				t.Fatalf("refitted: %d points before the origin, want %d", n3, n+7)
			}
			// Over a day ago, the time is in days.
			long := append(append([]float64(nil), y[:1500]...), constant(400, 60)...)
			for i := 1500; i < len(long); i++ {
				long[i] += r.NormFloat64()
			}
			if err := f.Fit(long); err != nil {
				t.Fatal(err)
			}
			if n4, d4 := at(); !strings.HasSuffix(d4, " days") || n4 < 288 {
				t.Fatalf("%d points (%s) before the origin, want over a day, in days", n4, d4)
			}
			if err := f.Fit(y[:1500]); err != nil {
				t.Fatal(err)
			}
			p, err := f.Forecast(12)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(p.Reason, "level shift") {
				t.Fatalf("no shift, reason %q", p.Reason)
			}
		})
	}
}

// TestModelsAfterLevelShift: every model's bands, not only auto's, stay
// at the level after a shift: a shift inside the backtest window is not an
// error the model makes again at every horizon step (before, naive's p50
// on a one-minute series that dropped from 33 to 24 an hour earlier
// drifted down to 12 over the hour, the backtest errors that spanned the
// drop moving the median residual).
func TestModelsAfterLevelShift(t *testing.T) {
	oneMin := Options{Step: time.Minute, Horizon: 60}
	r := rand.New(rand.NewPCG(6, 7))
	var y []float64
	for i := 0; i < 90; i++ {
		y = append(y, 33+0.05*r.NormFloat64())
	}
	for i := 0; i < 60; i++ {
		y = append(y, 24+0.05*r.NormFloat64())
	}
	for _, name := range []string{"naive", "ets", "theta", "arima", "global", "auto"} {
		t.Run(name, func(t *testing.T) {
			p := fitForecast(t, name, oneMin, y, 60)
			for _, q := range []float64{0.1, 0.5, 0.9} {
				for s, v := range p.Quantile(q) {
					if math.Abs(v-24) > 2 {
						t.Fatalf("p%.0f at step %d: %.2f, want about 24 (%s; %s)", 100*q, s+1, v, p.Model, p.Reason)
					}
				}
			}
		})
	}
}

// TestAsGivenIsTextbook: with AsGiven the baselines forecast from the
// history as it is, level shift and all (the evaluation's seasonal naive
// is the value one day earlier, which the reference implementation
// reproduces), while by default the history before the shift is moved to
// the current level.
func TestAsGivenIsTextbook(t *testing.T) {
	y := seasonal(3*288, 288, 10, 50)
	for i := 5 * 144; i < len(y); i++ {
		y[i] += 40
	}
	n := len(y)
	o := fiveMin
	o.AsGiven = true
	p := fitForecast(t, "seasonal-naive", o, y, 12)
	for h, v := range p.Mean {
		if want := y[n-288+h]; math.Abs(v-want) > 1e-9 {
			t.Fatalf("AsGiven: step %d: %.3f, want the value a day earlier %.3f", h+1, v, want)
		}
	}
	p = fitForecast(t, "seasonal-naive", fiveMin, y, 12)
	if p.Mean[0]-y[n-288] < 20 {
		t.Fatalf("default: step 1: %.3f, want the value a day earlier (%.3f) moved up to the new level (+40)", p.Mean[0], y[n-288])
	}
}

func TestStale(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 7))
	y := make([]float64, 1000)
	for i := range y {
		y[i] = 50 + r.NormFloat64()
	}
	o := fiveMin
	o.RefitEvery = 100
	for _, name := range []string{"auto", "ets"} {
		t.Run(name, func(t *testing.T) {
			f := mustNew(t, name, o)
			if err := f.Fit(y); err != nil {
				t.Fatal(err)
			}
			rf, ok := f.(Refitter)
			if !ok {
				t.Fatalf("%s does not implement Refitter", name)
			}
			for i := 0; i < 50; i++ {
				f.Update(50 + r.NormFloat64())
			}
			if stale, why := rf.Stale(); stale {
				t.Fatalf("stale after 50 ordinary points: %s", why)
			}
			for i := 0; i < 30; i++ {
				f.Update(50 + 20*r.NormFloat64())
			}
			if stale, why := rf.Stale(); !stale || why != "residuals degraded" {
				t.Fatalf("Stale() = %v %q after noisy points, want residuals degraded", stale, why)
			}
			if err := f.Fit(y); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 100; i++ {
				f.Update(50 + r.NormFloat64())
			}
			if stale, why := rf.Stale(); !stale || why != "refit schedule reached" {
				t.Fatalf("Stale() = %v %q after RefitEvery points", stale, why)
			}
		})
	}
}

func TestColdStartEveryModel(t *testing.T) {
	y := seasonal(300, 288, 5, 20) // about a day of 5-minute data
	for _, name := range Models() {
		p := fitForecast(t, name, fiveMin, y, 12)
		if !strings.Contains(p.Reason, "cold start") {
			t.Errorf("%s: reason %q does not say cold start", name, p.Reason)
		}
		if name != "seasonal-naive" && (strings.Contains(p.Model, "288") || strings.Contains(p.Model, "mstl")) {
			t.Errorf("%s: cold start used the daily season: %s", name, p.Model)
		}
	}
}

func TestForecastBeyondCalibratedHorizon(t *testing.T) {
	r := rand.New(rand.NewPCG(30, 31))
	y := randomWalk(r, 1500, 1)
	for _, name := range []string{"naive", "auto"} {
		p := fitForecast(t, name, fiveMin, y, 48) // calibrated for 12
		lo, hi := p.Quantile(0.1), p.Quantile(0.9)
		if w12, w48 := hi[11]-lo[11], hi[47]-lo[47]; !(w48 > w12) {
			t.Errorf("%s: band width %.3f at step 48 not wider than %.3f at step 12", name, w48, w12)
		}
	}
}

func TestDecomposeTwoSeasons(t *testing.T) {
	// Hourly data with a daily (24) and a weekly (168) component.
	n := 168 * 4
	day := func(i int) float64 { return 5 * math.Sin(2*math.Pi*float64(i%24)/24) }
	week := func(i int) float64 {
		if (i%168)/24 >= 5 {
			return -8 // weekend
		}
		return 3.2
	}
	y := make([]float64, n)
	for i := range y {
		y[i] = 100 + day(i) + week(i)
	}
	c := newMSTL([]int{24, 168}, newETS(etsSpec{}))
	if err := refit(c, y); err != nil {
		t.Fatal(err)
	}
	out := make([]float64, 168)
	c.forecast(out)
	for h, v := range out {
		want := 100 + day(n+h) + week(n+h)
		if math.Abs(v-want) > 1.5 {
			t.Fatalf("step %d: %.2f, want %.2f", h+1, v, want)
		}
	}
}

func TestAutoChoosesSensibly(t *testing.T) {
	r := rand.New(rand.NewPCG(40, 41))
	walk := randomWalk(r, 2000, 1)
	daily := seasonal(288*6, 288, 20, 100)
	for i := range daily {
		daily[i] += 0.5 * r.NormFloat64()
	}
	tests := []struct {
		name    string
		y       []float64
		h       int
		wantIn  string
		maxMAE  float64
		against func(s int) float64
	}{
		// A random walk: nothing beats the last value by much, and the
		// forecast must stay near it.
		{"random walk", walk, 12, "auto(", 0.5, func(int) float64 { return walk[len(walk)-1] }},
		// A strong daily cycle a day ahead: a seasonal member must be in.
		{"daily cycle", daily, 288, "mstl", 1.5, func(s int) float64 {
			return seasonal(len(daily)+s+1, 288, 20, 100)[len(daily)+s]
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Step: 5 * time.Minute, Horizon: tc.h}
			p := fitForecast(t, "auto", o, tc.y, tc.h)
			if !strings.Contains(p.Model, tc.wantIn) {
				t.Fatalf("model %s, want it to contain %q (%s)", p.Model, tc.wantIn, p.Reason)
			}
			if !strings.Contains(p.Reason, "backtest") {
				t.Fatalf("reason %q does not explain the choice", p.Reason)
			}
			mae := 0.0
			for s, v := range p.Mean {
				mae += math.Abs(v - tc.against(s))
			}
			if mae /= float64(tc.h); mae > tc.maxMAE {
				t.Fatalf("mean absolute difference %.3f from the expected path, want ≤ %v (%s)", mae, tc.maxMAE, p.Model)
			}
		})
	}
}

func TestHotspotFromForecast(t *testing.T) {
	// A series that climbs one unit per step: auto must see the trend and
	// report a crossing of a line a little above the last value.
	y := make([]float64, 1200)
	r := rand.New(rand.NewPCG(50, 51))
	for i := range y {
		y[i] = 10 + 0.05*float64(i) + 0.2*r.NormFloat64()
	}
	p := fitForecast(t, "auto", fiveMin, y, 12)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	line := y[len(y)-1] + 0.3
	h, err := FindHotspot(p, start, 5*time.Minute, line, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Crosses || h.Step < 1 || h.Step > 12 || h.Probability < 0.5 {
		t.Fatalf("hotspot %+v for a line 0.3 above a rising series (%s)", h, p.Model)
	}
	far, _ := FindHotspot(p, start, 5*time.Minute, line+100, 0.9)
	if far.Crosses || far.Probability > 0.01 {
		t.Fatalf("hotspot %+v for a line far above", far)
	}
}

func TestARIMARecoversARMA11(t *testing.T) {
	// y(t) = 0.5·y(t−1) + e(t) + 0.4·e(t−1).
	r := rand.New(rand.NewPCG(70, 71))
	y := make([]float64, 3000)
	prevY, prevE := 0.0, 0.0
	for i := range y {
		e := r.NormFloat64()
		y[i] = 0.5*prevY + e + 0.4*prevE
		prevY, prevE = y[i], e
	}
	c := fitARIMA(y, arimaOrder{p: 1, q: 1}, 1, nmQuickIters)
	if math.Abs(c.phi[0]-0.5) > 0.07 || math.Abs(c.theta[0]-0.4) > 0.07 {
		t.Fatalf("phi, theta = %.3f, %.3f, want 0.5, 0.4", c.phi[0], c.theta[0])
	}
	if c.sse/float64(c.nobs) > 1.1 {
		t.Fatalf("residual variance %.3f, want about 1", c.sse/float64(c.nobs))
	}
}
