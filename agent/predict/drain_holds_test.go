package predict

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestDrainOfALocalityHoldingThisOneIsItsOwn: a drain declared by the
// policy of dc1/web of "dc1", which holds every node of dc1/web, takes
// dc1/web's nodes too. Its whole drain empties dc1/web inside the window,
// as a drain of its own locality does; one of some of dc1's nodes reads
// dc1/web's hotspots on its nodes that stay, as one of some of its own
// does. It was taken as another locality's: the whole drain added dc1's
// demand to dc1/web's forecast, with or without migrate.targets
// (nothing added, the forecast left at 40%), and the drain of some nodes
// added nothing and read no hotspot on the rest.
func TestDrainOfALocalityHoldingThisOneIsItsOwn(t *testing.T) {
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	var nodes []Node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, Node{Name: fmt.Sprintf("dc1-rack-a-%d", i), Datacenter: "dc1", NodePool: "web", Ready: true, CPUMHz: 4000, MemoryMB: 8192})
	}
	for i := 1; i <= 7; i++ {
		nodes = append(nodes, Node{Name: fmt.Sprintf("dc1-rack-b-%d", i), Datacenter: "dc1", NodePool: "web", Ready: true, CPUMHz: 4000, MemoryMB: 8192})
	}
	nodes = append(nodes, Node{Name: "dc1-rack-a-9", Datacenter: "dc1", NodePool: "batch", Ready: true, CPUMHz: 4000, MemoryMB: 8192})
	nine, ten := at(0, 9, 0), at(0, 10, 0)
	for _, tc := range []struct {
		name, nodes string
		targets     []policies.Locality
		cpu         float64
	}{
		{name: "all of dc1", cpu: 40},
		{name: "all of dc1, migrate.targets", targets: []policies.Locality{{Datacenter: "dc3"}}, cpu: 40},
		{name: "dc1's rack a", nodes: "dc1-rack-a-*", cpu: 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sched := `schedule "dc1-down" {
    cron       = "0 9 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]`
			if tc.nodes != "" {
				sched += fmt.Sprintf("\n    nodes = %q", tc.nodes)
			}
			sched += "\n  }"
			s := newStore(t)
			now := at(0, 8, 15)
			fill(t, s, web, t0, steps(now), func(int) float64 { return tc.cpu })
			fill(t, s, state.Key{Locality: "dc1/web", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 4000 })
			fill(t, s, state.Key{Locality: "dc1", Metric: "cpu_mhz"}, t0, steps(now), func(int) float64 { return 6000 })
			pol := policy(t, sched, func(p *policies.Policy) { p.Migrate.Targets = tc.targets })
			res := New(nil).RunOnce(now, s, []*policies.Policy{pol}, nodes...)
			fc := forecastOf(t, res, web)
			if len(fc.Events) != 1 || fc.Events[0].Added != 0 || fc.Events[0].From != (policies.Locality{}) {
				t.Fatalf("events %+v; want one of this locality's own drain, adding nothing", fc.Events)
			}
			band := fc.Band(0.9)
			if tc.nodes == "" {
				for i, at := range fc.Times {
					if !at.Before(nine) && at.Before(ten) && band[i] != 0 {
						t.Errorf("%s: p90 %.1f inside the window; want 0, dc1/web emptied (%s)", at.Format("15:04"), band[i], fc.Events[0].Detail)
					}
				}
				return
			}
			if !strings.Contains(fc.Events[0].Detail, "(3 of 10, 30% of its CPU)") {
				t.Errorf("event %q; want dc1/web's share of rack a", fc.Events[0].Detail)
			}
			for i, at := range fc.Times {
				if math.Abs(band[i]-60) > 5 {
					t.Errorf("%s: p90 %.1f; want the forecast as the model made it, about 60", at.Format("15:04"), band[i])
				}
			}
			if fc.Hotspot == nil || fc.Hotspot.At.Before(nine) || !strings.HasPrefix(fc.Hotspot.Detail, "on the nodes of dc1/web that stay while dc1-rack-a-* are drained") {
				t.Errorf("hotspot %+v; want one inside the window read on rack b (60%% ×1.43 over the 80%% line)", fc.Hotspot)
			}
		})
	}
}
