package predict

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// breachRun drives a predictor cycle by cycle over a locality whose
// history is one day repeated (a seasonal model fits it exactly, with
// bands of no width) and which then shows what today(i) says, i counting
// the steps after the history; it returns the cpu forecast of each cycle.
func breachRun(t *testing.T, pol *policies.Policy, history func(int) float64, today func(int) float64, cycles int) []Forecast {
	t.Helper()
	s := newStore(t)
	n := 3 * 288
	fill(t, s, cpu, t0, n, history)
	p := New(nil)
	var out []Forecast
	for c := 0; c <= cycles; c++ {
		if c > 0 {
			fill(t, s, cpu, t0.Add(time.Duration(n+c-1)*5*time.Minute), 1, func(int) float64 { return today(c - 1) })
		}
		now := t0.Add(time.Duration(n+c-1) * 5 * time.Minute)
		var fc *Forecast
		for _, f := range p.RunOnce(now, s, []*policies.Policy{pol}).Forecasts {
			if f.Key() == cpu {
				fc = &f
			}
		}
		if fc == nil {
			t.Fatalf("cycle %d: no cpu forecast", c)
		}
		out = append(out, *fc)
	}
	return out
}

// raisedBy is how far fc's mean lies above the history's own day at each
// of its steps (the same at every step, or NaN when it is not).
func raisedBy(fc Forecast, day func(int) float64, n int) float64 {
	d := fc.Mean[0] - day(n)
	for i := range fc.Mean {
		if math.Abs(fc.Mean[i]-day(n+i)-d) > 0.05 {
			return math.NaN()
		}
	}
	return d
}

// A forecast proven too low — BreachSteps observations in a row above its
// planning band — is raised by the recent error over the whole horizon,
// keeping its shape, until as many observations fall inside the band.
func TestForecastRaisedWhileObservationsBreachItsBand(t *testing.T) {
	day := daily(40, 10)
	pol := policy(t, "", func(p *policies.Policy) { p.Forecast.Model = "seasonal-naive" })
	n := 3 * 288
	// Today runs 25 points above the day before for six steps, then
	// returns to it.
	today := func(i int) float64 {
		if i < 6 {
			return day(n+i) + 25
		}
		return day(n + i)
	}
	fcs := breachRun(t, pol, day, today, 12)
	for c, fc := range fcs {
		got := raisedBy(fc, day, n+c)
		var want float64
		switch {
		case c >= BreachSteps && c <= 6:
			want = 25 // the mean error of the last three, all 25 above
		case c == 7:
			want = 2 * 25.0 / 3 // two of the last three were 25 above
		case c == 8:
			want = 25.0 / 3
		}
		if math.Abs(got-want) > 0.1 {
			t.Errorf("cycle %d: forecast %.2f above the model's, want %.2f (reason %q)", c, got, want, fc.Reason)
		}
		if raised := strings.Contains(fc.Reason, "raised by"); raised != (want > 0) {
			t.Errorf("cycle %d: reason %q", c, fc.Reason)
		}
	}
}

// Two observations above the band, or any number inside it, or above it
// inside a scheduled window of the policy, change nothing; nor does a
// forecast that runs high.
func TestForecastNotRaisedWithoutABreach(t *testing.T) {
	day := daily(40, 10)
	n := 3 * 288
	plain := policy(t, "", func(p *policies.Policy) { p.Forecast.Model = "seasonal-naive" })
	// The window runs from 00:00 on day 4, where today starts, for an hour.
	peak := policy(t, `schedule "sale" {
    cron     = "0 0 * * *"
    duration = "1h"
    action   = "peak"
    factor   = 1.6
  }`, func(p *policies.Policy) { p.Forecast.Model = "seasonal-naive" })
	for _, c := range []struct {
		name  string
		pol   *policies.Policy
		today func(int) float64
	}{
		{"two above, one inside, two above", plain, func(i int) float64 {
			if i == 2 || i > 4 {
				return day(n + i)
			}
			return day(n+i) + 25
		}},
		{"below", plain, func(i int) float64 { return day(n+i) - 25 }},
		{"above inside a scheduled window", peak, func(i int) float64 { return 1.6 * day(n+i) }},
	} {
		for k, fc := range breachRun(t, c.pol, day, c.today, 8) {
			if strings.Contains(fc.Reason, "raised by") {
				t.Errorf("%s: cycle %d raised: %q", c.name, k, fc.Reason)
			}
		}
	}
}

// Observations inside a scheduled window of the policy do not end a
// running correction either: the forecast stays raised through the window,
// and the correction ends on three observations in a row inside the band
// after it. The window is a drain of another locality whose demand is
// unknown, which leaves the forecast as the model made it.
func TestCorrectionRunsThroughAScheduledWindow(t *testing.T) {
	day := daily(40, 10)
	n := 3 * 288
	pol := policy(t, `schedule "rack" {
    cron       = "15 0 * * *"
    duration   = "30m"
    action     = "drain"
    localities = ["dc1/rack-a"]
  }`, func(p *policies.Policy) { p.Forecast.Model = "seasonal-naive" })
	// Three observations 25 above the day before, then back on it: six
	// inside the window (00:15 to 00:45), then after it.
	today := func(i int) float64 {
		if i < BreachSteps {
			return day(n+i) + 25
		}
		return day(n + i)
	}
	for c, fc := range breachRun(t, pol, day, today, 13) {
		got := raisedBy(fc, day, n+c)
		var want float64
		switch {
		case c >= BreachSteps && c <= 9:
			want = 25 // the window's observations are not checked
		case c == 10:
			want = 2 * 25.0 / 3
		case c == 11:
			want = 25.0 / 3
		}
		if math.Abs(got-want) > 0.1 {
			t.Errorf("cycle %d: forecast %.2f above the model's, want %.2f (reason %q)", c, got, want, fc.Reason)
		}
	}
}

// The demand behind a percent forecast (what a scale-out is sized on) is
// checked against its own observations and raised the same way.
func TestDemandRaisedWhileObservationsBreachItsBand(t *testing.T) {
	s := newStore(t)
	mhz := state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}
	n := 3 * 288
	day := daily(6000, 2000)
	fill(t, s, mhz, t0, n, day)
	fill(t, s, cpu, t0, n, func(i int) float64 { return 100 * day(i) / 20000 })
	pol := policy(t, "", func(p *policies.Policy) {
		p.Forecast.Model = "seasonal-naive"
		p.Scales = []policies.Scale{{Name: "nodes", Min: 1, Max: 10, Cooldown: policies.DefaultCooldown}}
	})
	p := New(nil)
	var fc Forecast
	for c := 0; c <= BreachSteps; c++ {
		if c > 0 {
			at := t0.Add(time.Duration(n+c-1) * 5 * time.Minute)
			v := day(n+c-1) + 3000
			fill(t, s, mhz, at, 1, func(int) float64 { return v })
			fill(t, s, cpu, at, 1, func(int) float64 { return 100 * v / 20000 })
		}
		for _, f := range p.RunOnce(t0.Add(time.Duration(n+c-1)*5*time.Minute), s, []*policies.Policy{pol}).Forecasts {
			if f.Key() == cpu {
				fc = f
			}
		}
		if fc.Demand == nil {
			t.Fatalf("cycle %d: no demand", c)
		}
		for i := range fc.Times {
			want := day(n + c + i)
			if c == BreachSteps {
				want += 3000
			}
			if got := fc.Demand.Mean[i]; math.Abs(got-want) > 1 {
				t.Fatalf("cycle %d step %d: demand %.0f MHz, want %.0f", c, i, got, want)
			}
			if got, wantPct := fc.Mean[i], 100*want/20000; math.Abs(got-wantPct) > 0.01 {
				t.Fatalf("cycle %d step %d: cpu %.2f%%, want %.2f%%", c, i, got, wantPct)
			}
		}
	}
}
