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
