package sim_test

import (
	"maps"
	"testing"

	"github.com/hashicorp/nomad/api"
)

// A task whose driver a node lacks does not run there: Nomad's scheduler
// filters the node ("missing drivers", after the job's own constraints and
// before the group's), and a group no node can take waits in a blocked
// evaluation whose failed metric says so, no node exhausted. A system
// job that no node can take leaves no blocked evaluation and queues
// nothing, but names the group failed with the filtered nodes. (No node here
// has "podman": the simulator's nodes have docker, exec and raw_exec, the
// real Nomad dev agent's java, mock_driver and raw_exec.)
func TestFidelityMissingDriver(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		podman := func(j *api.Job) *api.Job {
			task := j.TaskGroups[0].Tasks[0]
			task.Driver = "podman"
			task.Config = map[string]any{"image": "pause"}
			j.Update = &api.UpdateStrategy{MaxParallel: new(0)}
			return j
		}
		failed := func(what string, id string, want map[string]int) {
			t.Helper()
			resp := c.register(t, podman(sleepJobWith(id, what)))
			ev := c.waitEval(t, resp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
			m := ev.FailedTGAllocs["g"]
			if ev.BlockedEval == "" || m == nil || ev.QueuedAllocations["g"] != 1 {
				t.Fatalf("%s: %s: evaluation blocked %q, failed %v, queued %v; want blocked, g failed, 1 queued", c.name, what, ev.BlockedEval, ev.FailedTGAllocs, ev.QueuedAllocations)
			}
			if m.NodesEvaluated != 1 || m.NodesFiltered != 1 || m.NodesExhausted != 0 || !maps.Equal(m.ConstraintFiltered, want) {
				t.Errorf("%s: %s: failed metric evaluated %d, filtered %d, exhausted %d, constraints %v; want 1, 1, 0, %v",
					c.name, what, m.NodesEvaluated, m.NodesFiltered, m.NodesExhausted, m.ConstraintFiltered, want)
			}
		}
		failed("driver", c.jobID("no-driver"), map[string]int{"missing drivers": 1})
		// The job's constraint is checked first, the group's after the driver.
		jobCon := api.NewConstraint("${node.unique.id}", "!=", c.node.ID)
		id := c.jobID("no-driver-job-constraint")
		j := podman(sleepJobWith(id, "job constraint"))
		j.Constrain(jobCon)
		resp := c.register(t, j)
		ev := c.waitEval(t, resp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if m := ev.FailedTGAllocs["g"]; m == nil || !maps.Equal(m.ConstraintFiltered, map[string]int{"${node.unique.id} != " + c.node.ID: 1}) {
			t.Errorf("%s: a job constraint and a missing driver: failed %+v; want the job constraint named", c.name, m)
		}
		id = c.jobID("no-driver-group-constraint")
		j = podman(sleepJobWith(id, "group constraint"))
		j.TaskGroups[0].Constrain(api.NewConstraint("${node.unique.id}", "!=", c.node.ID))
		resp = c.register(t, j)
		ev = c.waitEval(t, resp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		if m := ev.FailedTGAllocs["g"]; m == nil || !maps.Equal(m.ConstraintFiltered, map[string]int{"missing drivers": 1}) {
			t.Errorf("%s: a group constraint and a missing driver: failed %+v; want missing drivers named", c.name, m)
		}

		// A system job: nothing placed, nothing queued, no blocked
		// evaluation; the group failed with the filtered nodes' metric.
		sid := c.jobID("no-driver-system")
		sj := podman(sleepJobWith(sid, "system"))
		sj.Type = new(api.JobTypeSystem)
		sj.Update = nil
		sresp := c.register(t, sj)
		sev := c.waitEval(t, sresp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		as, _, err := c.client.Jobs().Allocations(sid, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := sev.FailedTGAllocs["g"]
		if len(as) != 0 || sev.BlockedEval != "" || !maps.Equal(sev.QueuedAllocations, map[string]int{"g": 0}) || m == nil {
			t.Fatalf("%s: a system job no node has the driver of: %d allocations, blocked %q, queued %v, failed %v; want none, none, g at 0, g failed",
				c.name, len(as), sev.BlockedEval, sev.QueuedAllocations, sev.FailedTGAllocs)
		}
		if m.NodesEvaluated != 1 || m.NodesFiltered != 1 || m.NodesExhausted != 0 || !maps.Equal(m.ConstraintFiltered, map[string]int{"missing drivers": 1}) {
			t.Errorf("%s: the system job's failed metric evaluated %d, filtered %d, exhausted %d, constraints %v; want 1, 1, 0, missing drivers 1",
				c.name, m.NodesEvaluated, m.NodesFiltered, m.NodesExhausted, m.ConstraintFiltered)
		}
	})
}

// sleepJobWith is sleepJob's one small allocation in dc1.
func sleepJobWith(id, _ string) *api.Job { return sleepJob(id, 1, 50, 32, 50) }
