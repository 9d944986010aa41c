package sim_test

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestFidelitySystemJobDisconnect: a system job's allocation whose group
// sets disconnect.lost_after keeps its node disconnected, not down, when
// the node stops heartbeating, as a service job's does: the allocation
// turns unknown ("alloc is unknown since its node is disconnected"), still
// desired to run, with no follow-up evaluation and nothing placed for it.
// Past lost_after the node goes down and the allocation is lost ("alloc is
// lost since its node is down"); when the client comes back the system job
// places a new allocation there and the lost one is reported complete.
// Measured on a real Nomad 2.0.6-dev with a second client stopped (SIGSTOP)
// and continued; the simulator took the node down at once, the allocation
// lost.
func TestFidelitySystemJobDisconnect(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		id := c.jobID("sysdisc")
		j := systemJob(id)
		j.Datacenters = []string{c.node.Datacenter}
		j.Constrain(api.NewConstraint("${node.unique.id}", "=", c.node.ID))
		j.TaskGroups[0].Disconnect = &api.DisconnectStrategy{LostAfter: new(time.Minute)}
		c.register(t, j)
		orig := c.waitAllocs(t, id, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })[0].ID

		takeDown()
		c.waitNode(t, "disconnected", func(n *api.Node) bool { return n.Status != api.NodeStatusReady })
		n, _, err := c.client.Nodes().Info(c.node.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		a := c.waitAlloc(t, orig, "unknown", func(a *api.Allocation) bool { return a.ClientStatus != api.AllocClientStatusRunning })
		c.logAlloc(t, "on the node gone", a)
		if n.Status != api.NodeStatusDisconnected || a.ClientStatus != api.AllocClientStatusUnknown || a.DesiredStatus != api.AllocDesiredStatusRun ||
			a.ClientDescription != "alloc is unknown since its node is disconnected" || a.FollowupEvalID != "" {
			t.Errorf("%s: node %s, the system allocation %s / %s (%q), follow-up %q; want the node disconnected, the allocation run / unknown with no follow-up",
				c.name, n.Status, a.DesiredStatus, a.ClientStatus, a.ClientDescription, a.FollowupEvalID)
		}
		if as, _, err := c.client.Jobs().Allocations(id, true, nil); err != nil || len(as) != 1 {
			t.Errorf("%s: the system job's allocations while the node is disconnected: %s (%v); want the unknown one alone", c.name, describe(as), err)
		}

		c.waitNode(t, "down past lost_after", func(n *api.Node) bool { return n.Status == api.NodeStatusDown })
		a = c.waitAlloc(t, orig, "lost", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusLost })
		c.logAlloc(t, "past lost_after", a)
		if a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is lost since its node is down" {
			t.Errorf("%s: the system allocation past lost_after: %s (%q); want stop (alloc is lost since its node is down)", c.name, a.DesiredStatus, a.DesiredDescription)
		}

		bringUp()
		c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		as := c.waitAllocs(t, id, "placed again", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		t.Logf("%s: back: %s", c.name, describe(as))
		a = c.waitAlloc(t, orig, "reported complete", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
		if a.DesiredStatus != api.AllocDesiredStatusStop {
			t.Errorf("%s: the lost system allocation back: %s; want stop", c.name, a.DesiredStatus)
		}
	})
}
