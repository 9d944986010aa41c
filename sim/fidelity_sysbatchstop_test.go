package sim_test

import (
	"reflect"
	"testing"

	"github.com/hashicorp/nomad/api"
)

// TestCompleteSysbatchAllocationStoppedKeepsItsEnd: a sysbatch job's
// version whose task changed runs it again on a node where its
// allocation completed, and stops that complete allocation
// (TestFidelitySysbatchUpdates): its client has nothing left to stop, so
// its task's end and events stay as they were, no Killing, no later
// FinishedAt. This is a stop that reaches a complete allocation, which
// stopAlloc's guard is there for: it moved the task's end to the stop
// plus 5 s before c6ee68c.
func TestCompleteSysbatchAllocationStoppedKeepsItsEnd(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("sysbatchstop")
		j := c.sysbatchOn(id, 1)
		c.register(t, j)
		orig := c.waitAllocs(t, id, "complete", func(as []*api.AllocationListStub) bool {
			return len(as) == 1 && as[0].ClientStatus == api.AllocClientStatusComplete
		})[0]
		before, _, err := c.client.Allocations().Info(orig.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		j.TaskGroups[0].Tasks[0].SetConfig("args", []string{"2"})
		c.register(t, j)
		c.waitAllocs(t, id, "run again", func(as []*api.AllocationListStub) bool { return len(as) == 2 })
		after, _, err := c.client.Allocations().Info(orig.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if after.DesiredStatus != api.AllocDesiredStatusStop || after.ClientStatus != api.AllocClientStatusComplete {
			t.Fatalf("%s: the complete allocation after a new task: %s/%s; want stop, complete", c.name, after.DesiredStatus, after.ClientStatus)
		}
		for name, was := range before.TaskStates {
			now := after.TaskStates[name]
			if now == nil || !now.FinishedAt.Equal(was.FinishedAt) || now.State != was.State || !reflect.DeepEqual(now.Events, was.Events) {
				t.Errorf("%s: task %s, once stopped: %+v; want it as it completed: %+v", c.name, name, now, was)
			}
		}
	})
}
