package shape

import (
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
