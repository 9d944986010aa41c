package shape

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReasonsNameTheQuantile: the reasons name the planning quantile as
// the policy writes it, a percentile: 0.999 as p99.9 and 0.995 as p99.5,
// which whole percents printed as p100, and 0.99 as p99.
func TestReasonsNameTheQuantile(t *testing.T) {
	for _, tc := range []struct {
		q    float64
		name string
	}{{0.999, "p99.9"}, {0.995, "p99.5"}, {0.99, "p99"}, {0.9, "p90"}} {
		t.Run(tc.name, func(t *testing.T) {
			quantile := func(f *fixture) *fixture {
				for i := range f.fcs {
					f.fcs[i].Quantile = tc.q
				}
				return f
			}
			var reasons []string
			add := func(p Plan) {
				for _, s := range p.Submit {
					reasons = append(reasons, s.Request.Reason)
				}
				for _, s := range p.Scale {
					reasons = append(reasons, s.Reason)
				}
				for _, r := range p.Rescore {
					reasons = append(reasons, r.Reason)
				}
				for _, d := range p.Decisions {
					reasons = append(reasons, d.Reason)
				}
			}
			want := map[string]string{
				"hotspot":         "hotspot: " + tc.name + " memory 81% crosses the 80% line in dc2",
				"rebalance":       "rebalance: " + tc.name + " cpu 81% crosses the 80% line",
				"move that waits": tc.name + " cpu demand 75% + incoming 6% + held 0% would cross the 80% line in dc2",
				"move that fits":  tc.name + " cpu 40% + incoming 6% + held 0% stays under the 80% line",
				"spread":          "spread: " + tc.name + " cpu in dc1 peaks at 07:00 at 60% of its capacity",
			}

			f := quantile(baseFixture(t, "reschedule"))
			f.setFrom("dc2", "memory", 10*time.Minute, 81)
			add(Run(f.input()))

			f = quantile(baseFixture(t, "reschedule"))
			f.pols[0].Migrate.Rebalance = true
			f.pols[0].Schedules = nil
			f.setFrom("dc1", "cpu", 30*time.Minute, 81)
			add(Run(f.input()))

			for _, level := range []float64{74.75, 40} {
				f = quantile(baseFixture(t, "reschedule"))
				f.pols[1].Reserve.Enabled = false
				f.pols[1].Scales = nil
				f.setFrom("dc2", "cpu", 0, level)
				f.queued(f.allocRequest("web-0"))
				add(Run(f.input()))
			}

			add(Run(quantile(spreadFixture(t, true)).input()))

			for what, w := range want {
				if !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, w) }) {
					t.Errorf("%s: no reason with %q in %q", what, w, reasons)
				}
			}
			for _, r := range reasons {
				if tc.name != "p100" && strings.Contains(r, "p100") {
					t.Errorf("reason %q names p100", r)
				}
			}
		})
	}
}

// TestTargetNoteSaysWhereItsRoomIs: a drain window's request names its
// target's room against its line after the move. A target the move takes
// over its line (the one with the most room when none has enough) has a
// negative room, which read "-9% below its line": it is over its line by
// that much, and a target brought exactly to its line is at it. dc2's p90
// CPU is the level; the move adds web's 1000 MHz, 6.25 points of dc2.
func TestTargetNoteSaysWhereItsRoomIs(t *testing.T) {
	for _, tc := range []struct {
		level float64
		want  string
	}{
		{40, "the allowed target with the most room, 34% below its line at the planning quantile after the move"},
		{73.75, "the allowed target with the most room, at its line at the planning quantile after the move"},
		// 0.25 over, at the fewest decimals that do not read as 0%.
		{74, "the allowed target with the most room, 0.2% over its line at the planning quantile after the move"},
		{83, "the allowed target with the most room, 9% over its line at the planning quantile after the move"},
	} {
		t.Run(fmt.Sprint(tc.level), func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.setFrom("dc2", "cpu", 0, tc.level)
			f.now = at(90 * time.Minute)
			plan := Run(f.input())
			if len(plan.Submit) == 0 {
				t.Fatalf("nothing queued; decisions %+v", plan.Decisions)
			}
			for _, s := range plan.Submit {
				if r := s.Request.Reason; !strings.Contains(r, "to dc2: "+tc.want) || strings.Contains(r, "room, -") {
					t.Errorf("reason %q; want %q", r, tc.want)
				}
			}
		})
	}
	t.Run("the policy's own locality tried first", func(t *testing.T) {
		// dc3 at 75% with ops's drain of dc1, dc2 at 95%: web-0 goes to
		// dc3 though it takes it over its line.
		f := homeDrainFixture(t, 75, 30, "")
		f.setFrom("dc2", "cpu", 0, 95)
		_, why := queuedTargets(Run(f.input()))
		want := "to dc3, the policy's own locality, tried first: the allowed target with the most room, 1% over its line at the planning quantile through the window's end at 09:30"
		if !strings.Contains(why["web-0"], want) {
			t.Errorf("web-0's reason %q; want %q", why["web-0"], want)
		}
	})
}
