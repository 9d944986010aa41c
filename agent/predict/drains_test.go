package predict

import (
	"math"
	"strings"
	"testing"

	"github.com/hashicorp/cronexpr"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestDrainsOfSharedNodesAtOnceAddTheirWorkOnce: two drain schedules of
// one policy that take some nodes at once (which the loader warns of when
// it finds their windows overlap, reading a year of them) add each
// node's work to the forecast once. dc1/web
// holds 10,000 MHz at 40%; dc2's 1,500 MHz add 15 points, its batch
// nodes' 600 MHz 6. Inside 09:00–09:15 the p50 is 55 whichever comes
// first: a locality that shares nodes with one added already adds what
// its demand exceeds theirs. Before, 61 (or 70 for dc2 twice).
func TestDrainsOfSharedNodesAtOnceAddTheirWorkOnce(t *testing.T) {
	const dc2 = `schedule "first" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc2"]
  }`
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	for _, tc := range []struct {
		name          string
		first, second string
		want          float64
		detail        string  // in the second's event
		firstAt       string  // the first's cron, when not the second's
		early         float64 // the p50 at 09:00 and 09:05, when not want
	}{
		{"the wider first", "dc2", "dc2/*/batch", 55, `dc2/*/batch shares nodes with dc2, which schedule "first" drains at once: +0.0 is added, what its demand exceeds the +15.0 added for them`, "", 0},
		{"the narrower first", "dc2/*/batch", "dc2", 55, `dc2 shares nodes with dc2/*/batch, which schedule "first" drains at once: +9.0 is added, what its demand exceeds the +6.0 added for them`, "", 0},
		{"one locality twice", "dc2", "dc2", 55, `+0.0 is added`, "", 0},
		{"localities apart", "dc2/*/batch", "dc3", 40 + 6 + 10, "", "", 0},
		// The first from 09:10, the second from 09:00: the batch nodes'
		// work alone until 09:10, then dc2's.
		{"from inside the window", "dc2", "dc2/*/batch", 55, `+0.0 is added, what its demand exceeds the +15.0 added for them from 09:10`, "10 9 * * *", 46},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			now := at(0, 8, 15)
			fill(t, s, web, t0, steps(now), func(int) float64 { return 40 })
			fill(t, s, state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 4000 })
			fill(t, s, state.Key{Locality: "dc2", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 1500 })
			fill(t, s, state.Key{Locality: "dc2/*/batch", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 600 })
			fill(t, s, state.Key{Locality: "dc3", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 1000 })
			pol := policy(t, dc2, func(p *policies.Policy) {
				second := p.Schedules[0]
				second.Name = "second"
				p.Schedules[0].Localities = []policies.Locality{mustLocality(t, tc.first)}
				second.Localities = []policies.Locality{mustLocality(t, tc.second)}
				if tc.firstAt != "" {
					p.Schedules[0].Expr, p.Schedules[0].Cron = mustCron(t, tc.firstAt), tc.firstAt
				}
				p.Schedules = append(p.Schedules, second)
			})
			res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
			fc := forecastOf(t, res, web)
			for i, v := range fc.Band(0.5) {
				at := fc.Times[i]
				want := 40.0
				if !at.Before(t0.Add(9*60*60e9)) && at.Before(t0.Add(10*60*60e9)) {
					want = tc.want
				}
				if tc.early != 0 && at.Before(t0.Add(9*60*60e9+10*60e9)) && !at.Before(t0.Add(9*60*60e9)) {
					want = tc.early
				}
				if math.Abs(v-want) > 1 {
					t.Errorf("%s: p50 %.1f, want %.0f", at.Format("15:04"), v, want)
				}
			}
			if len(fc.Events) != 2 || !strings.Contains(fc.Events[1].Detail, tc.detail) {
				t.Errorf("events %+v; want the second's saying %q", fc.Events, tc.detail)
			}
		})
	}
}

func mustCron(t *testing.T, src string) *cronexpr.Expression {
	t.Helper()
	e, err := cronexpr.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustLocality(t *testing.T, s string) policies.Locality {
	t.Helper()
	l, err := policies.ParseLocality(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDrainAddedSaysWhatDrainsAdded: a forecast's DrainAdded is what the
// drains of other localities added at each step, the part the planner
// reads the forecast less (it counts the drained work where it sends the
// moves): dc2's 1,500 MHz, +15 points of dc1/web's 10,000 MHz, inside
// 09:00–10:00 and nothing outside; once for two schedules that drain dc2
// at once, as the forecast adds it once; the demand forecast's in MHz.
// Where dc2's demand is unknown (no samples) nothing is added, and
// DrainAdded is nil: the planner then reads the forecast as it is.
func TestDrainAddedSaysWhatDrainsAdded(t *testing.T) {
	const dc2 = `schedule "first" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc2"]
  }`
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	for _, tc := range []struct {
		name    string
		twice   bool
		unknown bool
	}{
		{name: "one drain"},
		{name: "two drains of dc2 at once", twice: true},
		{name: "dc2's demand unknown", unknown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			now := at(0, 8, 15)
			fill(t, s, web, t0, steps(now), func(int) float64 { return 40 })
			fill(t, s, state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 4000 })
			if !tc.unknown {
				fill(t, s, state.Key{Locality: "dc2", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 1500 })
			}
			pol := policy(t, dc2, func(p *policies.Policy) {
				p.Scales = []policies.Scale{{Name: "nodes", Min: 1, Max: 10, Cooldown: policies.DefaultCooldown}}
				if tc.twice {
					second := p.Schedules[0]
					second.Name = "second"
					p.Schedules = append(p.Schedules, second)
				}
			})
			res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
			fc := forecastOf(t, res, web)
			if fc.Demand == nil {
				t.Fatalf("no demand forecast: %+v", fc)
			}
			if tc.unknown {
				if fc.DrainAdded != nil || fc.Demand.DrainAdded != nil || fc.Events[0].Known {
					t.Errorf("DrainAdded %v, demand's %v, event %+v; want none added", fc.DrainAdded, fc.Demand.DrainAdded, fc.Events[0])
				}
				return
			}
			if len(fc.DrainAdded) != len(fc.Times) || len(fc.Demand.DrainAdded) != len(fc.Times) {
				t.Fatalf("DrainAdded %v, demand's %v; want one a step", fc.DrainAdded, fc.Demand.DrainAdded)
			}
			for i, at := range fc.Times {
				want, wantMHz := 0.0, 0.0
				if !at.Before(t0.Add(9*60*60e9)) && at.Before(t0.Add(10*60*60e9)) {
					want, wantMHz = 15, 1500
				}
				if math.Abs(fc.DrainAdded[i]-want) > 0.01 || math.Abs(fc.Demand.DrainAdded[i]-wantMHz) > 0.5 {
					t.Errorf("%s: DrainAdded %.2f, demand's %.0f MHz; want %.0f, %.0f", at.Format("15:04"), fc.DrainAdded[i], fc.Demand.DrainAdded[i], want, wantMHz)
				}
			}
		})
	}
}
