package shape

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReasonsReadOverTheLine: a planning quantile over its headroom line is
// what the planner acts on (TestAtTheLineIsNoCrossing), and its reasons
// print it so that it reads over the line: with the decimals that show it
// when whole numbers would print it at the line, and as before where whole
// numbers already differ.
func TestReasonsReadOverTheLine(t *testing.T) {
	for _, tc := range []struct {
		level                    float64
		hotspot, rebalance, move string
	}{{
		level:     80.5,
		hotspot:   "hotspot: p90 memory 80.5% crosses the 80% line in dc2 at 06:10",
		rebalance: "rebalance: p90 cpu 80.5% crosses the 80% line at 06:30 (0.5% over)",
		// 74.25 + 6.25 as one decimal prints them (to even): 80.4.
		move: "p90 cpu demand 74.2% + incoming 6.2% + held 0% would cross the 80% line in dc2 at 06:00",
	}, {
		level:     80.04,
		hotspot:   "hotspot: p90 memory 80.04% crosses the 80% line in dc2 at 06:10",
		rebalance: "rebalance: p90 cpu 80.04% crosses the 80% line at 06:30 (0.04% over)",
		move:      "p90 cpu demand 73.79% + incoming 6.25% + held 0% would cross the 80% line in dc2 at 06:00",
	}, {
		level:     81,
		hotspot:   "hotspot: p90 memory 81% crosses the 80% line in dc2 at 06:10",
		rebalance: "rebalance: p90 cpu 81% crosses the 80% line at 06:30 (1% over)",
		move:      "p90 cpu demand 75% + incoming 6% + held 0% would cross the 80% line in dc2 at 06:00",
	}} {
		t.Run(fmt.Sprintf("%v%%/hotspot", tc.level), func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.setFrom("dc2", "memory", 10*time.Minute, tc.level)
			var got []string
			for _, s := range Run(f.input()).Scale {
				got = append(got, s.Reason)
			}
			if !slices.ContainsFunc(got, func(r string) bool { return strings.Contains(r, tc.hotspot) }) {
				t.Errorf("p90 memory %v%% against dc2's 80%% line: scale reasons %q; want one with %q", tc.level, got, tc.hotspot)
			}
		})
		t.Run(fmt.Sprintf("%v%%/rebalance", tc.level), func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.pols[0].Migrate.Rebalance = true
			f.pols[0].Schedules = nil
			f.setFrom("dc1", "cpu", 30*time.Minute, tc.level)
			plan := Run(f.input())
			var got []string
			for _, r := range plan.Submit {
				got = append(got, r.Request.Reason)
			}
			for _, d := range plan.Decisions {
				got = append(got, d.Reason)
			}
			if !slices.ContainsFunc(got, func(r string) bool { return strings.HasPrefix(r, tc.rebalance) }) {
				t.Errorf("p90 cpu %v%% against dc1's 80%% line: reasons %q; want one starting %q", tc.level, got, tc.rebalance)
			}
		})
		t.Run(fmt.Sprintf("%v%%/a move over its target's line", tc.level), func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.pols[1].Reserve.Enabled = false
			f.pols[1].Scales = nil
			// web-0 is 1000 MHz, 6.25% of dc2's 16000.
			f.setFrom("dc2", "cpu", 0, tc.level-6.25)
			f.queued(f.allocRequest("web-0"))
			rs, ok := rescoreOf(Run(f.input()), "mr-1")
			if !ok || !strings.Contains(rs.Reason, tc.move) {
				t.Errorf("a move that brings dc2's p90 CPU to %v%% of its 80%% line: %+v; want a reason with %q", tc.level, rs, tc.move)
			}
		})
	}
}

// TestFiguresAgainstTheLine: the figures a reason compares with a line
// print so that they compare as they are, both ways: a sum at or under the
// line (a move that fits) never reads over it, and room below the line or
// an excess over it never reads as none.
func TestFiguresAgainstTheLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		over  bool
		line  float64
		parts []float64
		want  string
	}{
		{"whole numbers that differ print as before", true, 80, []float64{75.4, 6.25, 0}, "75% + 6% + 0% against 80%"},
		{"over, whole numbers at the line", true, 80, []float64{80.5}, "80.5% against 80%"},
		{"just over", true, 80, []float64{80.001}, "80.001% against 80%"},
		{"over a line with decimals", true, 79.95, []float64{80.04}, "80.04% against 79.95%"},
		// 73.5 and 5.5 print 74 and 6 as whole numbers: 81 over 80.
		{"at the line, whole numbers over it", false, 80, []float64{73.5, 5.5, 1}, "73.5% + 5.5% + 1% against 80%"},
		{"under, whole numbers at it", false, 80, []float64{79.6}, "80% against 80%"},
		{"under, whole numbers over it", false, 80, []float64{73.5, 5.5, 0.9}, "73.5% + 5.5% + 0.9% against 80%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			figs, line := againstLine(tc.over, tc.line, tc.parts...)
			if got := strings.Join(figs, " + ") + " against " + line; got != tc.want {
				t.Errorf("againstLine(%v, %v, %v) reads %q; want %q", tc.over, tc.line, tc.parts, got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		v    float64
		want string
	}{{34.2, "34%"}, {0.3, "0.3%"}, {0.004, "0.004%"}, {0, "0%"}, {-0.3, "-0.3%"}, {-2.6, "-3%"}} {
		if got := signed(tc.v); got != tc.want {
			t.Errorf("signed(%v) = %q; want %q", tc.v, got, tc.want)
		}
	}
}
