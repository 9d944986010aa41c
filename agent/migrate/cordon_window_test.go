package migrate

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// TestOperatorsDrainInAWindowIsLeftAtItsEnd: dc1's maintenance window
// (06:30–07:30) takes a-1 out of scheduling from 06:10 and moves web off
// it. At 07:00 an operator drains a-1 themselves (`nomad node drain
// -enable -deadline 2h`, meta naming no foreshape request): with a
// sysbatch job's allocation running on a-1 for three hours the drain
// goes on past 07:30; without, it completes at once, leaving a-1 out of
// scheduling. The window's give-back ended the running drain and made a-1
// eligible, or made it eligible after the complete one: foreshape lifted
// an operator's drain it had not made. Now the give-back leaves a node an
// operator drained after foreshape took it out as it is (draining, or out
// of scheduling), with one hold decision saying why. A drain an operator
// ended before the window, a-1 made eligible again, is older than the
// window's take-out: a-1 is given back at 07:30 as before.
func TestOperatorsDrainInAWindowIsLeftAtItsEnd(t *testing.T) {
	drain := func(h *harness, node string) {
		h.t.Helper()
		if _, err := h.client.Nodes().UpdateDrainOpts(node, &nomadapi.DrainOptions{
			DrainSpec: &nomadapi.DrainSpec{Deadline: 2 * time.Hour}, Meta: map[string]string{"message": "disk swap"}}, nil); err != nil {
			h.t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		sysbatch bool // a sysbatch allocation holds the drain on
		before   bool // drained (and made eligible) before the window instead
	}{
		{name: "drain running", sysbatch: true},
		{name: "drain complete"},
		{name: "drained before the window", before: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, windowPolicies(""))
			a1 := h.nodeID("a-1")
			if tc.sysbatch {
				h.registerOnce(3 * time.Hour)
			}
			if tc.before {
				drain(h, a1)
				h.step(5 * time.Minute)
				if n, _, err := h.client.Nodes().Info(a1, nil); err != nil || n.DrainStrategy != nil {
					t.Fatalf("a-1's drain before the window: %v %v; the test needs it complete", n.DrainStrategy, err)
				}
				if _, err := h.client.Nodes().ToggleEligibility(a1, true, nil); err != nil {
					t.Fatal(err)
				}
			}
			h.passUntil(time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC), nil)
			if got := h.eligibility(a1); got != nomadapi.NodeSchedulingIneligible {
				t.Fatalf("a-1 %s at 07:00, in its window; the test needs it out", got)
			}
			if !tc.before {
				drain(h, a1)
			}
			h.passUntil(time.Date(2026, 1, 5, 7, 35, 0, 0, time.UTC), nil)
			n, _, err := h.client.Nodes().Info(a1, nil)
			if err != nil {
				t.Fatal(err)
			}
			kept := h.decisionsSaying("", "an operator drained it after foreshape took it out")
			back := h.decisionsSaying("", "node a-1 eligible again")
			if tc.before {
				if n.SchedulingEligibility != nomadapi.NodeSchedulingEligible || len(back) != 1 || len(kept) != 0 {
					t.Errorf("a-1 at 07:35 %s, give-backs %q, kept %q; want it given back once", n.SchedulingEligibility, back, kept)
				}
				return
			}
			if (n.DrainStrategy != nil) != tc.sysbatch || n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
				t.Errorf("a-1 at 07:35: drain %v, %s; want the operator's drain left as it is (running %v) and a-1 out of scheduling; decisions %q",
					n.DrainStrategy, n.SchedulingEligibility, tc.sysbatch, h.decisionsSaying("", "a-1"))
			}
			if len(back) != 0 {
				t.Errorf("give-backs of a-1 %q; want none", back)
			}
			if len(kept) != 1 {
				t.Errorf("decisions on leaving the operator's drain %q; want one", kept)
			}
		})
	}
}
