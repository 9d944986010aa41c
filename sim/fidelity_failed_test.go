package sim_test

import (
	"maps"
	"testing"

	"github.com/hashicorp/nomad/api"
)

// TestFidelityFailedDestructiveUpdate: a destructive update whose new
// allocations do not fit. Nomad's scheduler frees the old allocation's
// capacity for its replacement (its plan stops the old one first); when no
// node fits the replacement even so, it takes the stop back, and it tries
// no later placement of the group in that evaluation (coalesced into the
// first failure, their old allocations not stopped either). So the old
// allocations all run on, untouched, and the update waits in a blocked
// evaluation with every one of them queued. Here two allocations of m MB
// are updated to one the node fits only if both old ones were stopped: the
// first replacement does not fit beside the second old allocation, and the
// second is not tried. A smaller update then replaces both, each beside the
// other's old allocation.
func TestFidelityFailedDestructiveUpdate(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		free := freeMemory(t, c)
		m := free / 4
		id := c.jobID("destructive-fail")
		j := sleepJob(id, 2, 50, m, 50)
		j.Update.MaxParallel = new(2)
		c.register(t, j)
		before := c.waitAllocs(t, id, "2 running", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })
		modified := map[string]uint64{}
		for _, a := range before {
			if running(a) {
				modified[a.ID] = a.ModifyIndex
			}
		}

		// After one old allocation stopped the node has free-m: the new
		// size is more than that, and fits only in all of free.
		j.TaskGroups[0].Tasks[0].Resources.MemoryMB = new(free - m/2)
		ev := c.waitEval(t, c.register(t, j).EvalID, "completed", func(e *api.Evaluation) bool { return e.Status != api.EvalStatusPending })
		fm := ev.FailedTGAllocs["g"]
		if ev.Status != api.EvalStatusComplete || ev.BlockedEval == "" || fm == nil || fm.CoalescedFailures != 1 || ev.QueuedAllocations["g"] != 2 {
			t.Errorf("%s: the update's evaluation: %s, blocked %q, failed %v, queued %v; want complete, blocked, g failed with 1 coalesced, 2 queued",
				c.name, ev.Status, ev.BlockedEval, ev.FailedTGAllocs, ev.QueuedAllocations)
		}
		if fm != nil && fm.DimensionExhausted["memory"] != 1 {
			t.Errorf("%s: the failed placement's exhausted dimensions %v; want memory on the one node", c.name, fm.DimensionExhausted)
		}
		as, _, err := c.client.Jobs().Allocations(id, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 2 {
			t.Errorf("%s: allocations after the failed update: %s; want the 2 old ones alone", c.name, describe(as))
		}
		for _, a := range as {
			if mi, ok := modified[a.ID]; !ok || a.DesiredStatus != api.AllocDesiredStatusRun || a.ModifyIndex != mi || a.JobVersion != 0 {
				t.Errorf("%s: allocation %s after the failed update: %s/%s, version %d, modify index %d (was %d); want the old one, untouched",
					c.name, a.ID[:8], a.DesiredStatus, a.ClientStatus, a.JobVersion, a.ModifyIndex, mi)
			}
		}

		// Each new one fits beside the other's old one: both replaced.
		j.TaskGroups[0].Tasks[0].Resources.MemoryMB = new(free/2 - m/4)
		c.register(t, j)
		c.waitAllocs(t, id, "2 of version 2 running, the old ones stopped", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool { return running(a) && a.JobVersion == 2 }) == 2 &&
				count(as, func(a *api.AllocationListStub) bool { return a.JobVersion < 2 && !stopping(a) }) == 0
		})
		if ev.BlockedEval != "" {
			c.waitEval(t, ev.BlockedEval, "ended once the next update placed everything", func(e *api.Evaluation) bool { return e.Status != api.EvalStatusBlocked })
		}
	})
}

// TestFidelityFailedMetricIsItsPlacements: the failed metric of an
// evaluation counts the nodes its failed placement found full, not those
// the group's earlier placements passed over: Nomad's scheduler fills a
// fresh metric for each placement. With dc2's node full and room for two
// in dc1, a group of three in both datacenters walks past dc2's node for
// each of the first two and finds both nodes full for the third.
func TestFidelityFailedMetricIsItsPlacements(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		fillDC2(t, c, 100)
		m := freeMemory(t, c) * 4 / 10
		id := c.jobID("three-for-two")
		j := sleepJob(id, 3, 50, m, 50)
		j.Datacenters = []string{"dc1", "dc2"}
		ev := c.waitEval(t, c.register(t, j).EvalID, "completed", func(e *api.Evaluation) bool { return e.Status != api.EvalStatusPending })
		fm := ev.FailedTGAllocs["g"]
		if ev.BlockedEval == "" || fm == nil || ev.QueuedAllocations["g"] != 1 {
			t.Fatalf("%s: the evaluation: %s, blocked %q, failed %v, queued %v; want blocked, g failed, 1 queued", c.name, ev.Status, ev.BlockedEval, ev.FailedTGAllocs, ev.QueuedAllocations)
		}
		want := map[string]int{"cpu": 1, "memory": 1}
		if fm.NodesExhausted != 2 || fm.CoalescedFailures != 0 || !maps.Equal(fm.DimensionExhausted, want) {
			t.Errorf("%s: failed metric: %d exhausted %v, %d coalesced; want 2 %v, 0", c.name, fm.NodesExhausted, fm.DimensionExhausted, fm.CoalescedFailures, want)
		}
	})
}

// TestFidelitySystemJobFitsNowhere: a system job too large for every node
// of its datacenters. Nomad's system scheduler keeps the metric of the
// first node it could not place on (that node alone evaluated and full)
// and counts each later one as coalesced into it; every placement is
// queued, and the blocked evaluation it creates names that node and is
// named nowhere in the evaluation (its BlockedEval stays empty). Measured
// on a real Nomad 2.0.6-dev.
func TestFidelitySystemJobFitsNowhere(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		id := c.jobID("sys-nowhere")
		j := systemJob(id)
		j.Datacenters = []string{"dc1", "dc2"}
		j.TaskGroups[0].Tasks[0].Resources.MemoryMB = new(1 << 24)
		ev := c.waitEval(t, c.register(t, j).EvalID, "completed", func(e *api.Evaluation) bool { return e.Status != api.EvalStatusPending })
		fm := ev.FailedTGAllocs["g"]
		if ev.Status != api.EvalStatusComplete || ev.BlockedEval != "" || fm == nil || ev.QueuedAllocations["g"] != 2 {
			t.Fatalf("%s: the evaluation: %s, blocked %q, failed %v, queued %v; want complete, none blocked, g failed, 2 queued",
				c.name, ev.Status, ev.BlockedEval, ev.FailedTGAllocs, ev.QueuedAllocations)
		}
		want := map[string]int{"memory": 1}
		if fm.NodesInPool != 2 || fm.NodesEvaluated != 1 || fm.NodesExhausted != 1 || fm.CoalescedFailures != 1 ||
			!maps.Equal(fm.DimensionExhausted, want) || !maps.Equal(fm.NodesAvailable, map[string]int{"dc1": 1, "dc2": 1}) {
			t.Errorf("%s: failed metric: in pool %d, evaluated %d, exhausted %d %v, coalesced %d, available %v; want 2, 1, 1 %v, 1, dc1 and dc2 1 each",
				c.name, fm.NodesInPool, fm.NodesEvaluated, fm.NodesExhausted, fm.DimensionExhausted, fm.CoalescedFailures, fm.NodesAvailable, want)
		}
		if as, _, err := c.client.Jobs().Allocations(id, true, nil); err != nil || len(as) != 0 {
			t.Errorf("%s: allocations of a system job that fits nowhere: %s, %v; want none", c.name, describe(as), err)
		}
		evals, _, err := c.client.Jobs().Evaluations(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		var blocked []*api.Evaluation
		for _, e := range evals {
			if e.Status == api.EvalStatusBlocked {
				blocked = append(blocked, e)
			}
		}
		if len(blocked) != 1 || blocked[0].PreviousEval != ev.ID || blocked[0].TriggeredBy != "queued-allocs" ||
			blocked[0].StatusDescription != "created to place remaining allocations" || blocked[0].FailedTGAllocs["g"] == nil {
			t.Fatalf("%s: blocked evaluations: %s; want one after %s, queued-allocs, created to place remaining allocations, g failed",
				c.name, describeEvals(blocked), ev.ID[:8])
		}
		nodes := c.listNodes(t)
		if b := blocked[0]; readyIn(nodes, "dc1").ID != b.NodeID && readyIn(nodes, "dc2").ID != b.NodeID {
			t.Errorf("%s: the blocked evaluation names node %q; want dc1's or dc2's", c.name, b.NodeID)
		}
	})
}
