package shape

import "testing"

// BenchmarkPlanSpread plans the 1,000-node day's shape (five datacenters
// of 200 nodes, no request queued) with and without migrate.spread: what
// reading every node's share of the peak costs a pass.
func BenchmarkPlanSpread(b *testing.B) {
	for _, spread := range []bool{false, true} {
		name := "off"
		if spread {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			in := benchInput(b, 5, 200, 0)
			for _, p := range in.Policies {
				p.Migrate.Spread = spread
			}
			b.ReportAllocs()
			var plan Plan
			for b.Loop() {
				plan = Run(in)
			}
			b.ReportMetric(float64(len(plan.Submit)), "submits")
		})
	}
}
