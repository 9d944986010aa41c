package predict

import (
	"fmt"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestHotspotPeakingOnTheRestSaysWhereItPeaks: dc1/web at 82% CPU crosses
// its 80% line on the forecast's first step, before a drain of rack a (3
// of its 10 nodes) starts at 09:00, and peaks inside the window on the
// nodes that stay, ×1.43. Its Detail says where it peaks in the words the
// crossing's Detail uses ("on the nodes of … that stay while … are
// drained: p90 …"), which the dashboard writes after "It is" and the CLI
// after the series' name: it began "peaks on the nodes of", and the
// dashboard said "It is peaks on the nodes of dc1/web …".
func TestHotspotPeakingOnTheRestSaysWhereItPeaks(t *testing.T) {
	const rackA = `schedule "rack-a" {
    cron     = "0 9 * * *"
    duration = "1h"
    action   = "drain"
    nodes    = "dc1-rack-a-*"
  }`
	web := state.Key{Locality: "dc1/web", Metric: "cpu"}
	var nodes []Node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, Node{Name: fmt.Sprintf("dc1-rack-a-%d", i), Datacenter: "dc1", NodePool: "web", Ready: true, CPUMHz: 4000, MemoryMB: 8192})
	}
	for i := 1; i <= 7; i++ {
		nodes = append(nodes, Node{Name: fmt.Sprintf("dc1-rack-b-%d", i), Datacenter: "dc1", NodePool: "web", Ready: true, CPUMHz: 4000, MemoryMB: 8192})
	}
	now := at(0, 8, 15)
	s := newStore(t)
	fill(t, s, web, t0, steps(now), func(int) float64 { return 82 })
	res := New(nil).RunOnce(now, s, []*policies.Policy{policy(t, rackA, nil)}, nodes...)
	var hot *Hotspot
	for i := range res.Hotspots {
		if res.Hotspots[i].Metric == "cpu" {
			hot = &res.Hotspots[i]
		}
	}
	if hot == nil || !hot.At.Before(at(0, 9, 0)) {
		t.Fatalf("hotspot %+v; want one crossing before the window", hot)
	}
	const want = "on the nodes of dc1/web that stay while dc1-rack-a-* are drained: p90 "
	if !strings.HasPrefix(hot.Detail, want) || !strings.HasSuffix(hot.Detail, "% at its peak") || !strings.Contains(hot.Detail, "×1.43") {
		t.Errorf("hotspot detail %q; want %q… ×1.43 = …%% at its peak", hot.Detail, want)
	}
}
