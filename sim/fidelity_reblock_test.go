package sim_test

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// A blocked evaluation run again that still cannot place is blocked again
// as it was: Nomad's scheduler re-blocks it without writing it
// (Eval.Reblock), so its ModifyIndex and failed metric stay those it was
// created with, not the run's. Here it was created while the node was out
// of scheduling (no node evaluated) and runs again once the node comes
// back (the node too small for it).
func TestFidelityReblockedEvalKeepsItsMetric(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		c.giveBackAtEnd(t)
		if _, err := c.client.Nodes().ToggleEligibility(c.node.ID, false, nil); err != nil {
			t.Fatal(err)
		}
		id := c.jobID("reblocked")
		j := sleepJob(id, 1, 50, freeMemory(t, c)+500, 50)
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		resp := c.register(t, j)
		ev := c.waitEval(t, resp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if ev.BlockedEval == "" {
			t.Fatalf("%s: no blocked evaluation", c.name)
		}
		b := c.waitEval(t, ev.BlockedEval, "read", anyEval)
		m := b.FailedTGAllocs["g"]
		if m == nil || m.NodesEvaluated != 0 {
			t.Fatalf("%s: the blocked evaluation's metric %+v; the test needs none evaluated", c.name, m)
		}
		if _, err := c.client.Nodes().ToggleEligibility(c.node.ID, true, nil); err != nil {
			t.Fatal(err)
		}
		wait := 3 * time.Second
		if c.sim != nil {
			wait /= simSpeed
		}
		time.Sleep(wait)
		after := c.waitEval(t, ev.BlockedEval, "read", anyEval)
		am := after.FailedTGAllocs["g"]
		if after.Status != api.EvalStatusBlocked || after.ModifyIndex != b.ModifyIndex || am == nil || am.NodesEvaluated != 0 || am.NodesExhausted != 0 {
			t.Errorf("%s: the blocked evaluation run again with its node back: %s at ModifyIndex %d, metric %+v; want blocked at %d as it was created (none evaluated)",
				c.name, after.Status, after.ModifyIndex, am, b.ModifyIndex)
		}
		if as, _, err := c.client.Jobs().Allocations(id, false, nil); err != nil || len(as) != 0 {
			t.Errorf("%s: %d allocations (%v); want none: the job never fits", c.name, len(as), err)
		}
	})
}
