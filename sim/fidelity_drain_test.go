package sim_test

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// A drain with a negative deadline (nomad node drain -force) has no force
// deadline: Nomad leaves DrainStrategy.ForceDeadline empty and keeps the
// deadline as sent, and its drainer stops every allocation at once,
// whatever the migrate block's max_parallel. The node ends drained and
// ineligible, its drain ended by its deadline ("Node drain complete" with
// deadline_reached).
func TestFidelityForceDrain(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.drainableJob(t, "forcedrain", 3)
		if _, err := c.client.Nodes().UpdateDrain(c.node.ID, &api.DrainSpec{Deadline: -time.Second}, false, nil); err != nil {
			t.Fatal(err)
		}
		n, _, err := c.client.Nodes().Info(c.node.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n.DrainStrategy != nil && (!n.DrainStrategy.ForceDeadline.IsZero() || n.DrainStrategy.Deadline != -time.Second) {
			t.Errorf("forced drain: deadline %s, force deadline %s; want -1s and none", n.DrainStrategy.Deadline, n.DrainStrategy.ForceDeadline)
		}
		if n.SchedulingEligibility != api.NodeSchedulingIneligible || n.LastDrain == nil {
			t.Errorf("forced drain: eligibility %s, last drain %+v", n.SchedulingEligibility, n.LastDrain)
		}
		allocs := c.waitAllocs(t, id, "all stopped", func(as []*api.AllocationListStub) bool { return count(as, stopping) == 3 })
		t.Logf("%s: %s", c.name, describe(allocs))
		n = c.waitNode(t, "finished draining", func(n *api.Node) bool { return n.DrainStrategy == nil })
		if n.SchedulingEligibility != api.NodeSchedulingIneligible || n.LastDrain.Status != api.DrainStatusComplete || n.Drain {
			t.Errorf("drained node: eligibility %s last %+v", n.SchedulingEligibility, n.LastDrain)
		}
		// Its deadline, now, ended it.
		if e := lastNodeEvent(n); e.Message != "Node drain complete" || e.Details["deadline_reached"] != "true" {
			t.Errorf("%s: forced drain's last event %q %v; want Node drain complete with deadline_reached", c.name, e.Message, e.Details)
		}
	})
}
