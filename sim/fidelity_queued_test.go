package sim_test

import (
	"maps"
	"testing"

	"github.com/hashicorp/nomad/api"
)

// An evaluation's QueuedAllocations, as Nomad's scheduler sets them when
// it completes one: each group it placed in, with what it could not
// place (0 when all fitted); every group of the job at 0 when it had
// nothing to place (a stop too); nothing for a purged job. A blocked
// evaluation shows none while it waits (Nomad re-blocks it without
// them) and its groups at 0 once it completes.
func TestFidelityQueuedAllocations(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		complete := func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete }
		check := func(what string, e *api.Evaluation, want map[string]int) {
			t.Helper()
			if !maps.Equal(e.QueuedAllocations, want) {
				t.Errorf("%s: %s: the evaluation's queued allocations %v; want %v", c.name, what, e.QueuedAllocations, want)
			}
		}
		id := c.jobID("queued")
		j := sleepJob(id, 1, 50, 32, 50)
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		other := api.NewTaskGroup("h", 1)
		other.AddTask(api.NewTask("sleep", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"3600"}).
			Require(&api.Resources{CPU: new(50), MemoryMB: new(32)}))
		j.AddTaskGroup(other)
		resp := c.register(t, j)
		check("registered, both groups placed", c.waitEval(t, resp.EvalID, "complete", complete), map[string]int{"g": 0, "h": 0})
		c.waitAllocs(t, id, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 2 })

		// One group scaled: only it is named.
		sresp, _, err := c.client.Jobs().Scale(id, "g", new(2), "", false, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		check("g scaled to 2", c.waitEval(t, sresp.EvalID, "complete", complete), map[string]int{"g": 0})
		c.waitAllocs(t, id, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 3 })

		// Nothing to place: every group at 0.
		fresp, _, err := c.client.Jobs().ForceEvaluate(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		check("evaluated with nothing to do", c.waitEval(t, fresp, "complete", complete), map[string]int{"g": 0, "h": 0})

		// More than fits: the group's unplaced count, and a blocked
		// evaluation with none.
		big := freeMemory(t, c) + 500
		j.TaskGroups[1].Tasks[0].Resources.MemoryMB = new(big)
		resp = c.register(t, j)
		ev := c.waitEval(t, resp.EvalID, "complete", complete)
		check("h made larger than the node", ev, map[string]int{"h": 1})
		if ev.BlockedEval == "" {
			t.Fatalf("%s: no blocked evaluation", c.name)
		}
		check("the blocked evaluation", c.waitEval(t, ev.BlockedEval, "read", anyEval), map[string]int{})

		// The job stopped: the blocked evaluation is canceled, and the
		// stop's evaluation names every group at 0.
		dresp, _, err := c.client.Jobs().Deregister(id, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		check("the job stopped", c.waitEval(t, dresp, "complete", complete), map[string]int{"g": 0, "h": 0})
		check("the blocked evaluation after the stop", c.waitEval(t, ev.BlockedEval, "no longer blocked",
			func(e *api.Evaluation) bool { return e.Status != api.EvalStatusBlocked }), map[string]int{})

		// Purged: the job is gone, and its evaluation names no group.
		presp, _, err := c.client.Jobs().Deregister(id, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		check("the job purged", c.waitEval(t, presp, "complete", complete), map[string]int{})
	})
}
