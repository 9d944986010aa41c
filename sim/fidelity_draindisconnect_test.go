package sim_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// logNode logs the check's node as a drain of it shows: status,
// eligibility, drain strategy, last drain and its newest events.
func (c *cluster) logNode(t *testing.T, what string) *api.Node {
	t.Helper()
	n, _, err := c.client.Nodes().Info(c.node.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds := "none"
	if d := n.DrainStrategy; d != nil {
		ds = fmt.Sprintf("deadline %s force %s started %s", d.Deadline, d.ForceDeadline.Format(time.TimeOnly), d.StartedAt.Format(time.TimeOnly))
	}
	ld := "none"
	if l := n.LastDrain; l != nil {
		ld = fmt.Sprintf("%s started %s updated %s", l.Status, l.StartedAt.Format(time.TimeOnly), l.UpdatedAt.Format(time.TimeOnly))
	}
	var evs []string
	for _, e := range n.Events[max(0, len(n.Events)-6):] {
		evs = append(evs, fmt.Sprintf("%d %s/%q %v", e.CreateIndex, e.Subsystem, e.Message, e.Details))
	}
	t.Logf("%s: %s: node %s %s at %d, drain %s, last drain %s, events %s", c.name, what, n.Status, n.SchedulingEligibility, n.ModifyIndex, ds, ld, strings.Join(evs, "; "))
	return n
}

// logJob logs a job's allocations (statuses, descriptions, migrate mark,
// next) and evaluations.
func (c *cluster) logJob(t *testing.T, id, what string) []*api.Allocation {
	t.Helper()
	stubs, _, err := c.client.Jobs().Allocations(id, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.Allocation
	var parts []string
	for _, s := range stubs {
		a, _, err := c.client.Allocations().Info(s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
		parts = append(parts, fmt.Sprintf("%s on %s %s(%q)/%s(%q) migrate %v next %.8s at %d", a.ID[:8], a.NodeName, a.DesiredStatus, a.DesiredDescription,
			a.ClientStatus, a.ClientDescription, a.DesiredTransition.ShouldMigrate(), a.NextAllocation, a.ModifyIndex))
	}
	evals, _, err := c.client.Jobs().Evaluations(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(evals, func(i, k int) bool { return evals[i].CreateIndex < evals[k].CreateIndex })
	var es []string
	for _, e := range evals {
		es = append(es, fmt.Sprintf("%d %s %s(%q) node %.8s", e.CreateIndex, e.TriggeredBy, e.Status, e.StatusDescription, e.NodeID))
	}
	t.Logf("%s: %s: allocations %s; evaluations %s", c.name, what, strings.Join(parts, "; "), strings.Join(es, "; "))
	return out
}

// lastNodeEvent is the newest event of n.
func lastNodeEvent(n *api.Node) *api.NodeEvent {
	if len(n.Events) == 0 {
		return &api.NodeEvent{}
	}
	return n.Events[len(n.Events)-1]
}

// nodeDrainEvals counts the job's node-drain evaluations.
func (c *cluster) nodeDrainEvals(t *testing.T, id string) (n int, last uint64) {
	t.Helper()
	evals, _, err := c.client.Jobs().Evaluations(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evals {
		if e.TriggeredBy == "node-drain" {
			n++
			last = max(last, e.CreateIndex)
		}
	}
	return n, last
}

// TestFidelityDrainDisconnectedNode: a drain set on a node already
// disconnected, holding an allocation whose group sets
// disconnect.lost_after. Measured on a real Nomad 2.0 dev agent with a
// second client stopped (SIGSTOP) and continued: the drain is set as on
// any node ("Node drain strategy set", no evaluation in the answer, the
// node ineligible and still disconnected, LastDrain draining); the
// drainer marks the unknown allocation to migrate with a node-drain
// evaluation, which places nothing: it stays unknown and desired to run,
// and Nomad replaces it at its reschedule delay as on any disconnected
// node. The drain cannot complete while the allocation is unknown: it
// completes at its deadline, the drainer marking the allocation again
// with another node-drain evaluation, then "Node drain complete" with the
// detail deadline_reached = "true" (LastDrain complete), the node still
// disconnected, ineligible, the allocation still unknown. When the client
// comes back the node is ready and still ineligible, the original stops
// ("alloc not needed due to job update") and its replacement runs on.
func TestFidelityDrainDisconnectedNode(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		c.giveBackAtEnd(t)
		id := c.jobID("draindisc")
		orig := c.runDeployed(t, id, 10*time.Minute, 30*time.Second)

		takeDown()
		c.waitNode(t, "disconnected", func(n *api.Node) bool { return n.Status == api.NodeStatusDisconnected })
		c.waitAlloc(t, orig, "unknown", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusUnknown })
		resp, err := c.client.Nodes().UpdateDrain(c.node.ID, &api.DrainSpec{Deadline: 75 * time.Second}, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		set := c.logNode(t, "drain set on the disconnected node")
		if len(resp.EvalIDs) != 0 || set.Status != api.NodeStatusDisconnected || set.SchedulingEligibility != api.NodeSchedulingIneligible ||
			set.DrainStrategy == nil || set.LastDrain == nil || set.LastDrain.Status != api.DrainStatusDraining {
			t.Errorf("%s: drain set on the disconnected node: evaluations %v, node %s %s, last drain %+v; want none, disconnected, ineligible, draining",
				c.name, resp.EvalIDs, set.Status, set.SchedulingEligibility, set.LastDrain)
		}
		ev := false
		for _, e := range set.Events {
			ev = ev || (e.Message == "Node drain strategy set" && e.Subsystem == "Drain" && e.CreateIndex == resp.NodeModifyIndex)
		}
		if !ev {
			t.Errorf("%s: no \"Node drain strategy set\" event at %d: %+v", c.name, resp.NodeModifyIndex, set.Events)
		}
		a := c.waitAlloc(t, orig, "marked to migrate", func(a *api.Allocation) bool { return a.DesiredTransition.ShouldMigrate() })
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusUnknown {
			t.Errorf("%s: the unknown allocation marked to migrate: %s / %s; want run / unknown", c.name, a.DesiredStatus, a.ClientStatus)
		}
		if n, _ := c.nodeDrainEvals(t, id); n != 1 {
			t.Errorf("%s: %d node-drain evaluations once the drain marked the allocation; want 1", c.name, n)
		}
		c.logJob(t, id, "drain set on the disconnected node")

		a = c.waitAlloc(t, orig, "replaced", func(a *api.Allocation) bool { return a.NextAllocation != "" })
		repl := a.NextAllocation
		c.waitAlloc(t, repl, "running", func(r *api.Allocation) bool { return r.ClientStatus == api.AllocClientStatusRunning })
		if n := c.logNode(t, "replaced"); n.DrainStrategy == nil || a.ClientStatus != api.AllocClientStatusUnknown || a.DesiredStatus != api.AllocDesiredStatusRun {
			t.Errorf("%s: the unknown allocation replaced: %s / %s, drain %+v; want run / unknown, the drain running", c.name, a.DesiredStatus, a.ClientStatus, n.DrainStrategy)
		}

		n := c.waitNode(t, "done draining", func(n *api.Node) bool { return n.DrainStrategy == nil })
		c.logNode(t, "drain ended")
		c.logJob(t, id, "drain ended")
		last := lastNodeEvent(n)
		if last.Message != "Node drain complete" || last.Details["deadline_reached"] != "true" || n.LastDrain == nil || n.LastDrain.Status != api.DrainStatusComplete ||
			n.Status != api.NodeStatusDisconnected || n.SchedulingEligibility != api.NodeSchedulingIneligible {
			t.Errorf("%s: the drain ended: event %q %v, last drain %+v, node %s %s; want Node drain complete (deadline_reached), complete, disconnected, ineligible",
				c.name, last.Message, last.Details, n.LastDrain, n.Status, n.SchedulingEligibility)
		}
		if k, at := c.nodeDrainEvals(t, id); k != 2 || at > last.CreateIndex {
			t.Errorf("%s: %d node-drain evaluations, the last at %d; want 2, the second at the deadline, at or before the drain's end at %d", c.name, k, at, last.CreateIndex)
		}
		if a, _, err := c.client.Allocations().Info(orig, nil); err != nil || a.ClientStatus != api.AllocClientStatusUnknown || a.DesiredStatus != api.AllocDesiredStatusRun {
			t.Errorf("%s: the original once the drain ended: %v; want still run / unknown", c.name, err)
		}

		bringUp()
		c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		c.waitAlloc(t, orig, "stopped by its client", func(a *api.Allocation) bool {
			return a.DesiredStatus == api.AllocDesiredStatusStop && a.DesiredDescription == "alloc not needed due to job update" &&
				a.ClientStatus == api.AllocClientStatusComplete
		})
		c.logJob(t, id, "back")
		if n := c.logNode(t, "back"); n.SchedulingEligibility != api.NodeSchedulingIneligible || n.DrainStrategy != nil {
			t.Errorf("%s: the node back: %s, drain %+v; want ineligible, no drain", c.name, n.SchedulingEligibility, n.DrainStrategy)
		}
		if r, _, err := c.client.Allocations().Info(repl, nil); err != nil || r.DesiredStatus != api.AllocDesiredStatusRun || r.ClientStatus != api.AllocClientStatusRunning {
			t.Errorf("%s: the replacement once the node is back: %v; want it running on", c.name, err)
		}
	})
}

// TestFidelityNodeDisconnectsMidDrain: a node whose client stops
// heartbeating while a drain of it waits (migrate.max_parallel 1 and a
// min_healthy_time of a minute hold the second allocation back), then
// comes back while the drain still runs. Measured on a real Nomad 2.0 dev
// agent as TestFidelityDrainDisconnectedNode: the allocation left turns
// unknown, not marked to migrate, and is replaced at its reschedule delay
// as on any disconnected node; the drainer marks it to migrate (a
// node-drain evaluation, nothing placed) once the first replacement is
// healthy, and the drain runs on, the node disconnected. When the client
// comes back the node is ready and ineligible, the allocation stops
// ("alloc not needed due to job update", complete), its replacement runs
// on, and the drain completes ("Node drain complete", no detail; LastDrain
// complete), the node left ineligible.
func TestFidelityNodeDisconnectsMidDrain(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		c.giveBackAtEnd(t)
		id := c.jobID("draindiscmid")
		j := disconnectJob(c, id, 10*time.Minute, 5*time.Second)
		j.TaskGroups[0].Count = new(2)
		j.TaskGroups[0].Migrate = &api.MigrateStrategy{MaxParallel: new(1), MinHealthyTime: new(60 * time.Second), HealthyDeadline: new(3 * time.Minute)}
		c.register(t, j)
		as := c.waitAllocs(t, id, "running on the check's node", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })
		for _, a := range as {
			if a.NodeID != c.node.ID {
				t.Fatalf("%s: %s placed on %s, not the check's node %s", c.name, id, a.NodeName, c.node.Name)
			}
		}
		c.waitJob(t, id, "deployed", func(*api.Job) bool {
			d, _, err := c.client.Jobs().LatestDeployment(id, nil)
			return err == nil && d != nil && d.Status == api.DeploymentStatusSuccessful
		})
		if _, err := c.client.Nodes().UpdateDrain(c.node.ID, &api.DrainSpec{Deadline: 10 * time.Minute}, false, nil); err != nil {
			t.Fatal(err)
		}
		c.waitAllocs(t, id, "one migrated", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool { return a.ClientStatus == api.AllocClientStatusComplete }) == 1 &&
				count(as, func(a *api.AllocationListStub) bool { return running(a) && a.NodeID != c.node.ID }) == 1
		})
		var left string
		for _, a := range c.logJob(t, id, "one migrated") {
			if a.NodeID == c.node.ID && a.ClientStatus == api.AllocClientStatusRunning {
				left = a.ID
			}
		}

		takeDown()
		c.waitNode(t, "disconnected", func(n *api.Node) bool { return n.Status == api.NodeStatusDisconnected })
		a := c.waitAlloc(t, left, "unknown", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusUnknown })
		if a.DesiredTransition.ShouldMigrate() || a.DesiredStatus != api.AllocDesiredStatusRun {
			t.Errorf("%s: the allocation left, unknown: %s, migrate %v; want run, not marked yet", c.name, a.DesiredStatus, a.DesiredTransition.ShouldMigrate())
		}
		a = c.waitAlloc(t, left, "replaced", func(a *api.Allocation) bool { return a.NextAllocation != "" })
		repl := a.NextAllocation
		a = c.waitAlloc(t, left, "marked to migrate", func(a *api.Allocation) bool { return a.DesiredTransition.ShouldMigrate() })
		n := c.logNode(t, "unknown marked")
		c.logJob(t, id, "unknown marked")
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusUnknown || n.DrainStrategy == nil || n.Status != api.NodeStatusDisconnected {
			t.Errorf("%s: marked to migrate: %s / %s, node %s, drain %+v; want run / unknown, the node disconnected and draining",
				c.name, a.DesiredStatus, a.ClientStatus, n.Status, n.DrainStrategy)
		}
		if k, _ := c.nodeDrainEvals(t, id); k != 2 {
			t.Errorf("%s: %d node-drain evaluations; want 2 (the first allocation's, the unknown one's)", c.name, k)
		}

		bringUp()
		c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		c.waitAlloc(t, left, "stopped by its client", func(a *api.Allocation) bool {
			return a.DesiredStatus == api.AllocDesiredStatusStop && a.DesiredDescription == "alloc not needed due to job update" &&
				a.ClientStatus == api.AllocClientStatusComplete
		})
		n = c.waitNode(t, "done draining", func(n *api.Node) bool { return n.DrainStrategy == nil })
		c.logNode(t, "drain ended")
		c.logJob(t, id, "drain ended")
		last := lastNodeEvent(n)
		if last.Message != "Node drain complete" || len(last.Details) != 0 || n.LastDrain == nil || n.LastDrain.Status != api.DrainStatusComplete ||
			n.SchedulingEligibility != api.NodeSchedulingIneligible {
			t.Errorf("%s: the drain ended: event %q %v, last drain %+v, node %s; want Node drain complete (no detail), complete, ineligible",
				c.name, last.Message, last.Details, n.LastDrain, n.SchedulingEligibility)
		}
		if r, _, err := c.client.Allocations().Info(repl, nil); err != nil || r.DesiredStatus != api.AllocDesiredStatusRun || r.ClientStatus != api.AllocClientStatusRunning {
			t.Errorf("%s: the replacement once the node is back: %v; want it running on", c.name, err)
		}
	})
}
