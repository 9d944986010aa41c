package predict

import (
	"math"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestDrainOfAnotherLocalityShowsWhatComesHere: dc1/web (10,000 MHz at
// 40%, its line 80%) drains all of dc2 from 09:00 without
// migrate.targets. The planner sends dc2's moves here first only while
// dc1/web stays under its line with them, the rest to the other allowed
// localities, so at most the room under the line comes here: of dc2's
// 5,000 MHz (+50 points) about 40, which the forecast adds (and its
// demand, 4,000 MHz of the 5,000, in the same share), its event saying
// so, and no hotspot over the line of work the plan sends elsewhere.
// Before, all 50
// were added: 90% inside the window, a hotspot here, the shown forecast
// claiming work the plan does not send. dc2's 1,500 MHz (+15) fit and
// are added in full.
func TestDrainOfAnotherLocalityShowsWhatComesHere(t *testing.T) {
	const dc2 = `schedule "dc2-down" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc2"]
  }`
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	for _, tc := range []struct {
		name  string
		dc2   float64 // MHz
		fits  bool
		added float64 // points, about
	}{
		{name: "more than fits", dc2: 5000, added: 40},
		{name: "all fits", dc2: 1500, fits: true, added: 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			now := at(0, 8, 15)
			fill(t, s, web, t0, steps(now), func(int) float64 { return 40 })
			fill(t, s, state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 4000 })
			fill(t, s, state.Key{Locality: "dc2", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return tc.dc2 })
			pol := policy(t, dc2, func(p *policies.Policy) {
				p.Scales = []policies.Scale{{Name: "nodes", Min: 1, Max: 10, Cooldown: policies.DefaultCooldown}}
			})
			res := New(nil).RunOnce(now, s, []*policies.Policy{pol})
			fc := forecastOf(t, res, web)
			if len(fc.Events) != 1 {
				t.Fatalf("events %+v; want one", fc.Events)
			}
			e := fc.Events[0]
			if math.Abs(e.Added-tc.added) > 1 || !strings.Contains(e.Detail, homeFirst) {
				t.Errorf("event %+v; want about +%.0f added, the planner sending its moves here first", e, tc.added)
			}
			capNote := "of it comes here, this locality's room under its 80% line through the window's end"
			if tc.fits == strings.Contains(e.Detail, capNote) || tc.fits == strings.Contains(e.Detail, "moves out of dc2") {
				t.Errorf("detail %q; want it to say what comes here %v", e.Detail, !tc.fits)
			}
			// The plan may bring it to its line, not over it (at the
			// line exactly, with the room filled, is no hotspot).
			if fc.Hotspot != nil && fc.Hotspot.Peak > 80+1e-6 {
				t.Errorf("hotspot %+v; want none over the line: the plan sends here only what keeps it under its line", fc.Hotspot)
			}
			if fc.Demand == nil {
				t.Fatal("no demand forecast")
			}
			inside := 0
			for i, tt := range fc.Times {
				if tt.Before(at(0, 9, 0)) || !tt.Before(at(0, 10, 0)) {
					continue
				}
				inside++
				if p90 := fc.Band(0.9)[i]; p90 > 80+1e-6 {
					t.Errorf("%s: p90 %.2f over the 80%% line", tt.Format("15:04"), p90)
				}
				if fc.DrainAdded[i] != e.Added {
					t.Errorf("%s: DrainAdded %.2f; want the event's +%.2f", tt.Format("15:04"), fc.DrainAdded[i], e.Added)
				}
				// The demand's share is the percent's: 100 MHz a point
				// of dc1/web's 10,000.
				if want := 100 * e.Added; math.Abs(fc.Demand.DrainAdded[i]-want) > 1 {
					t.Errorf("%s: demand DrainAdded %.1f MHz; want %.1f", tt.Format("15:04"), fc.Demand.DrainAdded[i], want)
				}
			}
			if inside == 0 {
				t.Fatal("no step inside the window")
			}
		})
	}
}
