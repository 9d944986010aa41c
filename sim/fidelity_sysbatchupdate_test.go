package sim_test

import (
	"testing"

	"github.com/hashicorp/nomad/api"
)

// TestFidelitySysbatchUpdates: new versions of a sysbatch job on one node.
// One that changes nothing its task runs with (the job's priority) updates
// the running allocation in place: the same allocation runs on at the new
// version, nothing placed. Once it has completed, such a version leaves it
// as it is, complete at the version it ran, and places nothing. One whose
// task changed (its arguments) runs the job again on the node: a new
// allocation naming the complete one, which is marked stopped ("alloc is
// being updated due to job update"). Measured on a real Nomad 2.0.6-dev.
func TestFidelitySysbatchUpdates(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("sysbatchupdate")
		j := c.sysbatchOn(id, 20)
		c.register(t, j)
		orig := c.waitAllocs(t, id, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })[0]

		j.Priority = new(60)
		c.register(t, j)
		as := c.waitAllocs(t, id, "updated in place", func(as []*api.AllocationListStub) bool {
			return len(as) == 1 && as[0].JobVersion == 1
		})
		allocs, _ := c.logSysbatch(t, id, "a new priority while it runs")
		if a := as[0]; a.ID != orig.ID || !running(a) || len(allocs) != 1 {
			t.Errorf("%s: after a new priority: %s; want %.8s running on at version 1, nothing placed", c.name, describe(allocs), orig.ID)
		}

		c.waitAllocs(t, id, "complete", func(as []*api.AllocationListStub) bool {
			return len(as) == 1 && as[0].ClientStatus == api.AllocClientStatusComplete
		})
		j.Priority = new(70)
		c.register(t, j)
		c.waitJob(t, id, "version 2", func(j *api.Job) bool { return *j.Version == 2 })
		c.forceEval(t, id)
		allocs, _ = c.logSysbatch(t, id, "a new priority once it completed")
		if len(allocs) != 1 || allocs[0].ID != orig.ID || allocs[0].JobVersion != 1 || allocs[0].ClientStatus != api.AllocClientStatusComplete ||
			allocs[0].DesiredStatus != api.AllocDesiredStatusRun {
			t.Errorf("%s: after a new priority once it completed: %s (version %d); want %.8s complete at version 1, still desired to run, nothing placed",
				c.name, describe(allocs), allocs[0].JobVersion, orig.ID)
		}

		j.TaskGroups[0].Tasks[0].SetConfig("args", []string{"21"})
		c.register(t, j)
		c.waitAllocs(t, id, "run again", func(as []*api.AllocationListStub) bool { return len(as) == 2 })
		allocs, _ = c.logSysbatch(t, id, "a new task once it completed")
		for _, a := range allocs {
			switch {
			case a.ID == orig.ID:
				if a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is being updated due to job update" ||
					a.ClientStatus != api.AllocClientStatusComplete {
					t.Errorf("%s: the complete allocation after a new task: %s/%s (%q); want stop (alloc is being updated due to job update), complete",
						c.name, a.DesiredStatus, a.ClientStatus, a.DesiredDescription)
				}
			case a.JobVersion != 3 || a.NodeID != orig.NodeID || c.previous(t, a.ID) != orig.ID:
				t.Errorf("%s: placed %.8s at version %d on %s after %q; want version 3 on %s, naming %.8s",
					c.name, a.ID, a.JobVersion, a.NodeName, c.previous(t, a.ID), orig.NodeName, orig.ID)
			}
		}
	})
}
