package sim_test

import (
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"
)

// Nomad's scheduler places a group's missing allocations before its
// migrations' replacements (the reconciler lists the migrations last):
// with room for one of the two, an evaluation that finds both gives it to
// the missing allocation and queues the replacement. Here a group scaled
// to two waits in a blocked evaluation for room its one allocation holds;
// that allocation stopped (migrated), the evaluation of the stop places
// the second allocation, [1], and the replacement of [0] waits.
func TestFidelityMigrationPlacedAfterMissing(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		free := freeMemory(t, c)
		id := c.jobID("order")
		j := sleepJob(id, 1, 50, free*6/10, 50)
		j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		c.register(t, j)
		first := c.waitAllocs(t, id, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })[0]
		sresp, _, err := c.client.Jobs().Scale(id, "g", new(2), "", false, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		scaled := c.waitEval(t, sresp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if scaled.BlockedEval == "" {
			t.Fatalf("%s: the second allocation fitted beside the first (%d MB free)", c.name, free)
		}
		stop, err := c.client.Allocations().Stop(&api.Allocation{ID: first.ID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ev := c.waitEval(t, stop.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if ev.QueuedAllocations["g"] != 1 || ev.BlockedEval == "" {
			t.Errorf("%s: the stop's evaluation queued %v, blocked %q; want one queued, blocked", c.name, ev.QueuedAllocations, ev.BlockedEval)
		}
		as := c.waitAllocs(t, id, "placed", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool { return a.DesiredStatus == api.AllocDesiredStatusRun }) == 1
		})
		for _, a := range as {
			if a.DesiredStatus != api.AllocDesiredStatusRun {
				continue
			}
			full, _, err := c.client.Allocations().Info(a.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(a.Name, ".g[1]") || full.PreviousAllocation != "" {
				t.Errorf("%s: placed %s (previous %q); want the missing %s.g[1], no previous (the replacement of %s waits)",
					c.name, a.Name, full.PreviousAllocation, id, first.ID[:8])
			}
		}
	})
}
