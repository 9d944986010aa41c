package predict

import (
	"testing"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestHotspotIsOverTheLineNotAtIt: a hotspot is a planning quantile over
// the headroom line, the planner's rule (agent/shape acts on a planning
// quantile over its line, and a quantile at it keeps the headroom the
// policy asks for). dc1/web's CPU held flat at its 80% line forecasts p90
// exactly 80 at every step: no hotspot, in the forecast or in the
// result's list that /v1/hotspots, the CLI and the dashboard show. A
// point over it is one. Before, a quantile at the line was a hotspot the
// planner did nothing about.
func TestHotspotIsOverTheLineNotAtIt(t *testing.T) {
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	for _, tc := range []struct {
		level float64
		hot   bool
	}{{80, false}, {81, true}} {
		now := at(0, 8, 15)
		s := newStore(t)
		fill(t, s, web, t0, steps(now), func(int) float64 { return tc.level })
		res := New(nil).RunOnce(now, s, []*policies.Policy{policy(t, "", nil)})
		fc := forecastOf(t, res, web)
		if !fc.HasLine || fc.Line != 80 {
			t.Fatalf("line %v (has %v); want the 80%% line of the default 20%% headroom", fc.Line, fc.HasLine)
		}
		band := fc.Band(fc.PlanningQuantile)
		for i, v := range band {
			if v != tc.level {
				t.Fatalf("level %v: p90 %v at step %d; want the flat level at every step (the test reads the boundary)", tc.level, v, i+1)
			}
		}
		listed := false
		for _, h := range res.Hotspots {
			listed = listed || (h.Locality == fc.Locality && h.Metric == "cpu")
		}
		if (fc.Hotspot != nil) != tc.hot || listed != tc.hot {
			t.Errorf("p90 flat at %v%% against an 80%% line: hotspot %+v, listed %v; want one %v", tc.level, fc.Hotspot, listed, tc.hot)
		}
	}
}
