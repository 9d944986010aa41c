package sim_test

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestFidelityNodeDownStopOnClientAfter: an allocation whose group sets
// disconnect.stop_on_client_after, on a node that goes down. The
// node-update evaluation marks it lost and stopped as any ("alloc is lost
// since its node is down") but places nothing for its group: its
// FollowupEvalID is a pending "alloc-failure" evaluation ("created for
// delayed rescheduling") waiting until the loss plus stop_on_client_after
// plus the longest kill timeout of the group's tasks (5 s at least), which
// places a replacement of the same name that names no previous allocation,
// the lost one no next. An allocation of a group without the block, lost
// on the same node, is replaced at once and linked. When the client comes
// back nothing more is placed. Measured on a real Nomad 2.0.6-dev with a
// second client stopped (SIGSTOP) and continued.
func TestFidelityNodeDownStopOnClientAfter(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		after, plain := c.jobID("stopafter"), c.jobID("stopplain")
		const stopAfter, kill = 30 * time.Second, 10 * time.Second
		j := disconnectJob(c, after, 0, 5*time.Second)
		j.TaskGroups[0].Disconnect = &api.DisconnectStrategy{StopOnClientAfter: new(stopAfter)}
		j.TaskGroups[0].Tasks[0].KillTimeout = new(kill)
		orig := map[string]string{after: c.runDeployedJob(t, j), plain: c.runDeployed(t, plain, 0, 5*time.Second)}

		takeDown()
		c.waitNode(t, "down", func(n *api.Node) bool { return n.Status == api.NodeStatusDown })
		a := c.waitAlloc(t, orig[after], "lost", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusLost })
		c.logAlloc(t, "lost", a)
		lostAt := time.Unix(0, a.ModifyTime)
		if a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is lost since its node is down" || a.FollowupEvalID == "" {
			t.Fatalf("%s: the lost allocation: %s (%q), follow-up %q; want stop (alloc is lost since its node is down) with a follow-up",
				c.name, a.DesiredStatus, a.DesiredDescription, a.FollowupEvalID)
		}
		fe, _, err := c.client.Evaluations().Info(a.FollowupEvalID, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: follow-up %s %s %q, wait %v after the loss, previous %s", c.name, fe.TriggeredBy, fe.Status, fe.StatusDescription,
			fe.WaitUntil.Sub(lostAt), fe.PreviousEval)
		if fe.TriggeredBy != "alloc-failure" || fe.Status != api.EvalStatusPending || fe.StatusDescription != "created for delayed rescheduling" {
			t.Errorf("%s: the follow-up: %s %s %q; want a pending alloc-failure (created for delayed rescheduling)", c.name, fe.TriggeredBy, fe.Status, fe.StatusDescription)
		}
		if d := fe.WaitUntil.Sub(lostAt); d < stopAfter+kill-2*time.Second || d > stopAfter+kill+2*time.Second {
			t.Errorf("%s: the follow-up waits %v after the loss; want stop_on_client_after plus the kill timeout (%v)", c.name, d, stopAfter+kill)
		}
		if prev, _, err := c.client.Evaluations().Info(fe.PreviousEval, nil); err != nil || prev.TriggeredBy != "node-update" {
			t.Errorf("%s: the follow-up's previous evaluation %q: %v; want the node-update", c.name, fe.PreviousEval, err)
		}
		if as, _, err := c.client.Jobs().Allocations(after, true, nil); err != nil || len(as) != 1 {
			t.Errorf("%s: %s's allocations at the loss: %s (%v); want the lost one alone", c.name, after, describe(as), err)
		}

		// The plain one is replaced at once, linked.
		p := c.waitAlloc(t, orig[plain], "replaced", func(a *api.Allocation) bool { return a.NextAllocation != "" })
		if r, _, err := c.client.Allocations().Info(p.NextAllocation, nil); err != nil || r.PreviousAllocation != orig[plain] {
			t.Errorf("%s: the plain allocation's replacement: %v; want it to name the lost one", c.name, err)
		}

		as := c.waitAllocs(t, after, "replaced", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		for _, s := range as {
			if s.ID == orig[after] || s.ClientStatus != api.AllocClientStatusRunning {
				continue
			}
			r, _, err := c.client.Allocations().Info(s.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			created := time.Unix(0, r.CreateTime)
			t.Logf("%s: replacement %s on %s, %v after the loss, previous %q", c.name, r.ID[:8], r.NodeName, created.Sub(lostAt), r.PreviousAllocation)
			if r.Name != a.Name || r.PreviousAllocation != "" || created.Before(fe.WaitUntil.Add(-time.Second)) {
				t.Errorf("%s: the replacement %s (previous %q) created %v after the loss; want %s, no previous, at the follow-up (%v)",
					c.name, r.Name, r.PreviousAllocation, created.Sub(lostAt), a.Name, fe.WaitUntil.Sub(lostAt))
			}
		}
		a, _, err = c.client.Allocations().Info(orig[after], nil)
		if err != nil || a.NextAllocation != "" {
			t.Errorf("%s: the lost allocation's next %q: %v; want none", c.name, a.NextAllocation, err)
		}
		if e, _, err := c.client.Evaluations().Info(fe.ID, nil); err != nil || e.Status != api.EvalStatusComplete {
			t.Errorf("%s: the follow-up after the replacement: %v; want complete", c.name, err)
		}

		bringUp()
		c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		a = c.waitAlloc(t, orig[after], "reported by its client", func(a *api.Allocation) bool { return a.ClientStatus != api.AllocClientStatusLost })
		c.logAlloc(t, "back", a)
		if a.DesiredStatus != api.AllocDesiredStatusStop {
			t.Errorf("%s: the lost allocation back: %s; want stop", c.name, a.DesiredStatus)
		}
		if as, _, err := c.client.Jobs().Allocations(after, true, nil); err != nil || len(as) != 2 || count(as, running) != 1 {
			t.Errorf("%s: %s's allocations with the node back: %s (%v); want the lost one and its replacement running", c.name, after, describe(as), err)
		}
	})
}

// TestFidelityLostReplacedWhenRoomReturns: an allocation lost on a node
// that goes down, of a job pinned to that node, cannot be replaced (its
// evaluation blocks); when the node comes back the blocked evaluation
// places the missing allocation afresh, naming no previous allocation:
// only the evaluation that finds an allocation lost links its
// replacement to it. Measured on a real Nomad 2.0.6-dev.
func TestFidelityLostReplacedWhenRoomReturns(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		id := c.jobID("lostpinned")
		j := disconnectJob(c, id, 0, 5*time.Second)
		j.Datacenters = []string{c.node.Datacenter}
		j.Constrain(api.NewConstraint("${node.unique.id}", "=", c.node.ID))
		orig := c.runDeployedJob(t, j)

		takeDown()
		c.waitNode(t, "down", func(n *api.Node) bool { return n.Status == api.NodeStatusDown })
		a := c.waitAlloc(t, orig, "lost", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusLost })
		c.logAlloc(t, "lost", a)
		c.waitJob(t, id, "blocked", func(*api.Job) bool {
			evals, _, err := c.client.Jobs().Evaluations(id, nil)
			if err != nil {
				return false
			}
			for _, e := range evals {
				if e.Status == api.EvalStatusBlocked {
					return true
				}
			}
			return false
		})

		bringUp()
		c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		as := c.waitAllocs(t, id, "placed again", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		c.checkUnlinked(t, orig, as, "when the node came back")
		evals, _, err := c.client.Jobs().Evaluations(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: evaluations: %s", c.name, describeEvals(evals))
	})
}

// TestFidelityLostReplacedWhenRoomFreesElsewhere: an allocation lost on a
// node that goes down, whose replacement fits nowhere else (the other node
// is full), is placed when room frees there while the node is still down:
// the blocked evaluation places it naming no previous allocation, the lost
// one no next (Nomad's reconciler drops stopped allocations before it
// links). Measured on a real Nomad 2.0.6-dev.
func TestFidelityLostReplacedWhenRoomFreesElsewhere(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, _ := c.nodeDownUp(t)
		var other *api.Node
		for _, n := range c.listNodes(t) {
			if n.ID != c.node.ID && n.Status == api.NodeStatusReady && n.Datacenter == "dc1" {
				var err error
				if other, _, err = c.client.Nodes().Info(n.ID, nil); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		if other == nil {
			t.Skip("no other ready node in dc1")
		}
		id := c.jobID("lostelse")
		orig := c.runDeployed(t, id, 0, 5*time.Second)
		// Fill the other node but for less than the job's allocation.
		free := other.NodeResources.Memory.MemoryMB
		if r := other.ReservedResources; r != nil {
			free -= int64(r.Memory.MemoryMB)
		}
		as, _, err := c.client.Nodes().Allocations(other.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.ClientStatus == api.AllocClientStatusRunning && a.AllocatedResources != nil {
				for _, tr := range a.AllocatedResources.Tasks {
					free -= tr.Memory.MemoryMB
				}
			}
		}
		fill := c.jobID("lostfill")
		fj := sleepJob(fill, 1, 50, int(free)-16, 50)
		fj.Constrain(api.NewConstraint("${node.unique.id}", "=", other.ID))
		c.register(t, fj)
		c.waitAllocs(t, fill, "filling the other node", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })

		takeDown()
		c.waitNode(t, "down", func(n *api.Node) bool { return n.Status == api.NodeStatusDown })
		c.waitAlloc(t, orig, "lost", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusLost })
		c.waitJob(t, id, "blocked", func(*api.Job) bool {
			evals, _, err := c.client.Jobs().Evaluations(id, nil)
			for _, e := range evals {
				if err == nil && e.Status == api.EvalStatusBlocked {
					return true
				}
			}
			return false
		})
		if _, _, err := c.client.Jobs().Deregister(fill, true, nil); err != nil {
			t.Fatal(err)
		}
		as2 := c.waitAllocs(t, id, "placed on the other node", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		c.checkUnlinked(t, orig, as2, "when room freed")
	})
}

// checkUnlinked checks that the allocations of as other than orig, a lost
// one, name no previous allocation (placed when, as what says), and orig
// no next.
func (c *cluster) checkUnlinked(t *testing.T, orig string, as []*api.AllocationListStub, when string) {
	t.Helper()
	for _, s := range as {
		if s.ID == orig {
			continue
		}
		r, _, err := c.client.Allocations().Info(s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: replacement %s %s on %s, previous %q", c.name, r.ID[:8], r.ClientStatus, r.NodeName, r.PreviousAllocation)
		if r.PreviousAllocation != "" {
			t.Errorf("%s: the allocation placed %s names %q; want no previous allocation", c.name, when, r.PreviousAllocation)
		}
	}
	if a, _, err := c.client.Allocations().Info(orig, nil); err != nil || a.NextAllocation != "" {
		t.Errorf("%s: the lost allocation's next %q: %v; want none", c.name, a.NextAllocation, err)
	}
}
