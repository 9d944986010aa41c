package shape

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
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

// TestSpreadFiguresReadAgainstTheLine: a spread's reason prints the nodes'
// shares before and after its move with the decimals at which each reads
// over dc1's 80% line exactly when it is. dc1-1 runs four of web's ten
// allocations, each other node two; at a peak of 67% of dc1 each web's
// share is 26.8% of a node: the move takes dc1-1 from 107.2% to 80.4% and
// its receiver from 53.6% to 80.4%, both still over the line, which whole
// numbers printed as 80%, at it. At 66.5% both come to 79.8%, at or under
// the line: whole numbers print it as 80%, at it, as before.
func TestSpreadFiguresReadAgainstTheLine(t *testing.T) {
	for _, tc := range []struct {
		peak float64
		want string
	}{
		{67, "spread: p90 cpu in dc1 peaks at 07:00 at 67% of its capacity; dc1-1's share (what its allocations hold) would be 107.2%, over the 80% line: " +
			"moving web.web[0] (1000 MHz / 1024 MiB) onto dc1-2 (53.6% → 80.4%) brings dc1-1 to 80.4%"},
		{66.5, "spread: p90 cpu in dc1 peaks at 07:00 at 66% of its capacity; dc1-1's share (what its allocations hold) would be 106%, over the 80% line: " +
			"moving web.web[0] (1000 MHz / 1024 MiB) onto dc1-2 (53% → 80%) brings dc1-1 to 80%"},
	} {
		t.Run(fmt.Sprint(tc.peak), func(t *testing.T) {
			f := spreadFixture(t, true)
			f.allocs = nil
			i := 0
			for n, k := range []int{4, 2, 2, 2} {
				for range k {
					f.allocs = append(f.allocs, Alloc{ID: fmt.Sprintf("web-%d", i), Name: fmt.Sprintf("web.web[%d]", i), Namespace: "default",
						Job: "web", Group: "web", Node: f.nodes[n].ID, Size: state.Resources{CPU: 1000, MemoryMB: 1024}, Live: true, Running: true})
					i++
				}
			}
			f.jobs[0].Groups["web"] = Group{Count: i}
			f.setFrom("dc1", "cpu", time.Hour, tc.peak)
			got := spreads(Run(f.input()))
			if len(got) != 1 || got[0].Reason != tc.want {
				var rs []string
				for _, r := range got {
					rs = append(rs, r.Reason)
				}
				t.Errorf("spreads %q; want one: %q", rs, tc.want)
			}
		})
	}
}
