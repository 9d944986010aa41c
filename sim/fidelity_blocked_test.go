package sim_test

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// A blocked evaluation waits for a node's capacity to change, as Nomad's
// blocked-evaluation tracker has it: another job registered or scaled
// beside it leaves it as it was (its ModifyIndex unmoved), and so does the
// stop of an allocation whose client still runs it, though the scheduler
// counts that capacity free at once; only when the client reports the
// allocation complete does the blocked evaluation run again and place
// what waited. (The holder ignores SIGINT, so its client stops it after
// its 5 s kill timeout, the simulator's stop time.)
func TestFidelityBlockedEvalWaitsForFreedCapacity(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		free := freeMemory(t, c)
		holderID := c.jobID("blocked-holder")
		holder := sleepJob(holderID, 1, 50, free/2, 50)
		holder.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		task := holder.TaskGroups[0].Tasks[0]
		task.SetConfig("command", "/bin/sh").SetConfig("args", []string{"-c", "trap '' INT TERM; exec /bin/sleep 3600"})
		task.KillTimeout = new(5 * time.Second)
		c.register(t, holder)
		held := c.waitAllocs(t, holderID, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })[0]

		// Needs more than is left beside the holder, less than the node's.
		waiterID := c.jobID("blocked-waiter")
		waiter := sleepJob(waiterID, 1, 50, free-free/2+200, 50)
		waiter.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		resp := c.register(t, waiter)
		reg := c.waitEval(t, resp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if reg.BlockedEval == "" {
			t.Fatalf("%s: the waiter's registration left no blocked evaluation", c.name)
		}
		blocked := c.waitEval(t, reg.BlockedEval, "read", anyEval)

		// Another job that fits: the blocked evaluation is not run again.
		otherID := c.jobID("blocked-other")
		other := sleepJob(otherID, 1, 50, 32, 50)
		other.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		oresp := c.register(t, other)
		c.waitEval(t, oresp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		after := c.waitEval(t, reg.BlockedEval, "read", anyEval)
		if after.Status != api.EvalStatusBlocked || after.ModifyIndex != blocked.ModifyIndex {
			t.Errorf("%s: after another job's registration the blocked evaluation is %s at ModifyIndex %d; want blocked at %d, untouched",
				c.name, after.Status, after.ModifyIndex, blocked.ModifyIndex)
		}
		// Nor when that job is scaled.
		sresp, _, err := c.client.Jobs().Scale(otherID, "g", new(2), "", false, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.waitEval(t, sresp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		after = c.waitEval(t, reg.BlockedEval, "read", anyEval)
		if after.Status != api.EvalStatusBlocked || after.ModifyIndex != blocked.ModifyIndex {
			t.Errorf("%s: after another job's scaling the blocked evaluation is %s at ModifyIndex %d; want blocked at %d, untouched",
				c.name, after.Status, after.ModifyIndex, blocked.ModifyIndex)
		}

		// The holder stopped: its client runs it until the kill timeout.
		if _, _, err := c.client.Jobs().Deregister(holderID, false, nil); err != nil {
			t.Fatal(err)
		}
		// Nomad's scheduler stops the allocation milliseconds after
		// the answer: wait for it.
		h := c.waitAlloc(t, held.ID, "desired to stop", func(a *api.Allocation) bool {
			return a.DesiredStatus == api.AllocDesiredStatusStop || a.ClientTerminalStatus()
		})
		during := c.waitEval(t, reg.BlockedEval, "read", anyEval)
		switch {
		case h.ClientTerminalStatus():
			t.Logf("%s: the holder's client stopped it before it was looked at (%s); nothing checked while it stopped", c.name, h.ClientStatus)
		case h.DesiredStatus != api.AllocDesiredStatusStop:
			t.Errorf("%s: the holder's allocation after its job's stop is desired %s; want stop", c.name, h.DesiredStatus)
		case during.Status != api.EvalStatusBlocked || during.ModifyIndex != blocked.ModifyIndex:
			t.Errorf("%s: while the holder's client still runs it, the blocked evaluation is %s at ModifyIndex %d; want blocked at %d, untouched",
				c.name, during.Status, during.ModifyIndex, blocked.ModifyIndex)
		default:
			t.Logf("%s: the holder's allocation stopping (desired stop, client %s); the blocked evaluation untouched", c.name, h.ClientStatus)
		}

		// Stopped on its client: the blocked evaluation runs and places.
		c.waitAllocs(t, waiterID, "placed once the holder stopped", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		h = c.waitAlloc(t, held.ID, "read", func(*api.Allocation) bool { return true })
		done := c.waitEval(t, reg.BlockedEval, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if !h.ClientTerminalStatus() || done.ModifyIndex < h.ModifyIndex {
			t.Errorf("%s: the blocked evaluation completed at index %d, the holder's allocation %s at %d; want it after the holder's client stopped it",
				c.name, done.ModifyIndex, h.ClientStatus, h.ModifyIndex)
		}
	})
}
