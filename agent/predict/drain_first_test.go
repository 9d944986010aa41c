package predict

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// drainer is a policy of dc (one node pool, web) that drains all of dc1
// from cron for an hour, without migrate.targets, its lead time lead.
func drainer(t *testing.T, name, dc, cron, lead string) *policies.Policy {
	t.Helper()
	ps, diags := policies.Parse("test.hcl", []byte(fmt.Sprintf(`
shaping %q {
  locality {
    datacenter = %q
  }
  forecast {
    model    = "ets"
    horizon  = "2h"
    step     = "5m"
    history  = "3d"
    quantile = 0.9
  }
  migrate {
    lead_time = %q
  }
  schedule "dc1-all" {
    cron       = %q
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
  }
}`, name, dc, lead, cron)))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return ps[0]
}

// TestTwoPoliciesDrainingOneLocalityAddItOnce: ops (dc3) and ops4 (dc4)
// both drain all of dc1 without migrate.targets. The planner queues each
// of dc1's allocations once, for the drain whose lead time reaches it
// first (ops4's, an hour longer; or, beginning at once, ops's, the first
// policy), and sends it to that policy's own locality first: dc1's 1,500
// MHz (15 points of either's 10,000) is added to that forecast alone, and
// the other's event says whose drain moves the work. Before, both added
// it, and both said the planner sends the moves there first.
func TestTwoPoliciesDrainingOneLocalityAddItOnce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		opsLead      string
		ops4Lead     string
		first, other string // localities
		why          string
	}{
		{"same lead time", "2h", "2h", "dc3", "dc4", `policy "ops" drains dc1 at once (schedule "dc1-all", 09:00–10:00) and queues its moves first (its lead time begins at 07:00 too, and policy "ops" comes first)`},
		{"longer lead time", "2h", "3h", "dc4", "dc3", `policy "ops4" drains dc1 at once (schedule "dc1-all", 09:00–10:00) and queues its moves first (its lead time begins at 06:00, this window's at 07:00)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			now := at(0, 8, 15)
			for _, dc := range []string{"dc3", "dc4"} {
				fill(t, s, state.Key{Locality: dc, Metric: "cpu"}, t0, steps(now), func(int) float64 { return 40 })
				fill(t, s, state.Key{Locality: dc, Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 4000 })
			}
			fill(t, s, state.Key{Locality: "dc1", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 1500 })
			pols := []*policies.Policy{drainer(t, "ops", "dc3", "0 9 * * *", tc.opsLead), drainer(t, "ops4", "dc4", "0 9 * * *", tc.ops4Lead)}
			res := New(nil).RunOnce(now, s, pols)
			first := forecastOf(t, res, state.Key{Locality: tc.first, Metric: "cpu"})
			other := forecastOf(t, res, state.Key{Locality: tc.other, Metric: "cpu"})
			if len(first.Events) != 1 || math.Abs(first.Events[0].Added-15) > 0.5 || !strings.Contains(first.Events[0].Detail, homeFirst) {
				t.Errorf("%s: events %+v; want dc1's 15 points added, the planner sending its moves here first", tc.first, first.Events)
			}
			if len(other.Events) != 1 || other.Events[0].Added != 0 || other.DrainAdded != nil || !strings.Contains(other.Events[0].Detail, tc.why) ||
				strings.Contains(other.Events[0].Detail, homeFirst) {
				t.Errorf("%s: events %+v, DrainAdded %v; want nothing added, saying %q", tc.other, other.Events, other.DrainAdded, tc.why)
			}
			for i, at := range other.Times {
				if v := other.Band(0.5)[i]; math.Abs(v-40) > 2 {
					t.Errorf("%s %s: p50 %.1f; want 40, nothing added", tc.other, at.Format("15:04"), v)
				}
			}
		})
	}
}
