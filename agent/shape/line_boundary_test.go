package shape

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAtTheLineIsNoCrossing: the planner acts on a planning quantile over
// its headroom line, not at it, in each place that reads a crossing: a
// hotspot it scales for, a locality it rebalances, a target a move must
// fit under. At the line the headroom the policy asks for is kept (and
// the excess it would scale or move for is zero). predict reads a hotspot
// by the same rule (forecast.FindHotspot), so what the API, CLI and
// dashboard call a hotspot is what the planner acts on.
func TestAtTheLineIsNoCrossing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		level float64 // the planning quantile, or what a move brings it to
		acts  bool
	}{{"at the line", 80, false}, {"over the line", 81, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("hotspot scales", func(t *testing.T) {
				f := baseFixture(t, "reschedule")
				f.setFrom("dc2", "memory", 10*time.Minute, tc.level)
				scaled := false
				for _, s := range Run(f.input()).Scale {
					scaled = scaled || strings.Contains(s.Reason, ": hotspot: ")
				}
				if scaled != tc.acts {
					t.Errorf("p90 memory %v%% from 06:10 against dc2's 80%% line: scaled %v; want %v", tc.level, scaled, tc.acts)
				}
			})
			t.Run("rebalance moves", func(t *testing.T) {
				f := baseFixture(t, "reschedule")
				f.pols[0].Migrate.Rebalance = true
				f.pols[0].Schedules = nil
				f.setFrom("dc1", "cpu", 30*time.Minute, tc.level)
				plan := Run(f.input())
				acted := len(plan.Submit) > 0
				for _, d := range plan.Decisions {
					acted = acted || strings.HasPrefix(d.Reason, "rebalance")
				}
				if acted != tc.acts {
					t.Errorf("p90 cpu %v%% from 06:30 against dc1's 80%% line: rebalance submitted %d, decided %+v; want it to act %v",
						tc.level, len(plan.Submit), plan.Decisions, tc.acts)
				}
			})
			t.Run("a move fits its target", func(t *testing.T) {
				f := baseFixture(t, "reschedule")
				f.pols[1].Reserve.Enabled = false
				f.pols[1].Scales = nil
				// web-0 is 1000 MHz, 6.25% of dc2's 16000: it brings
				// dc2's p90 CPU to tc.level.
				f.setFrom("dc2", "cpu", 0, tc.level-6.25)
				f.queued(f.allocRequest("web-0"))
				plan := Run(f.input())
				started := slices.Contains(startIDs(plan), "mr-1")
				if started == tc.acts {
					t.Errorf("a move that brings dc2's p90 CPU to %v%% of its 80%% line: started %v; want %v (decisions %+v)", tc.level, started, !tc.acts, plan.Decisions)
				}
				if rs, ok := rescoreOf(plan, "mr-1"); tc.acts && (!ok || !strings.Contains(rs.Reason, "would cross the 80% line in dc2")) {
					t.Errorf("mr-1 %+v; want it to wait, its target congested", rs)
				}
			})
		})
	}
}
