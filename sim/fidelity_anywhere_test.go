package sim_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// anywherePlaceholder is a placeholder job shaped as foreshape's
// reservation door builds one for a locality that names no datacenter and
// no node pool (agent/migrate's placeholderJob): datacenters ["*"], node
// pool "all", the nodes it must leave alone excluded by
// ${node.unique.id} != constraints, one group per chunk of counts, each
// with no deployments (update max_parallel = 0), a delayed restart policy
// and a one-second kill timeout.
func anywherePlaceholder(id string, exclude []string, counts ...int) *api.Job {
	j := api.NewServiceJob(id, id, "global", 10)
	j.Datacenters = []string{"*"}
	j.NodePool = new(api.NodePoolAll)
	j.Meta = map[string]string{"foreshape_reservation": "res-anywhere"}
	for _, n := range exclude {
		j.Constrain(api.NewConstraint("${node.unique.id}", "!=", n))
	}
	for i, n := range counts {
		tg := api.NewTaskGroup(fmt.Sprintf("hold-%d-50mhz-32mib", i), n)
		task := api.NewTask("hold", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"3600"}).
			Require(&api.Resources{CPU: new(50), MemoryMB: new(32)})
		task.KillTimeout = new(time.Second)
		tg.AddTask(task)
		tg.Update = &api.UpdateStrategy{MaxParallel: new(0)}
		tg.RestartPolicy = &api.RestartPolicy{Attempts: new(3), Interval: new(10 * time.Minute), Delay: new(15 * time.Second), Mode: new("delay")}
		j.AddTaskGroup(tg)
	}
	return j
}

// A placeholder of a locality that names no datacenter and no node pool
// (datacenters ["*"], node_pool "all") is placed on whichever node its
// exclusions leave, in any datacenter: with dc1's node excluded, all of it
// on dc2's. Nomad keeps the job as registered (["*"], "all"), starts no
// deployment for it, and a hand-over scales one of its groups down by one
// at once, stopping one allocation of that group and leaving the other
// group's as they are. With every node excluded nothing is placed: the
// registration's evaluation completes with a blocked one, the summary
// queues the whole count, and no allocation is listed. (foreshape reserves
// such a locality's room with this job; where Nomad puts it is where the
// room is held.) The evaluation's failed metric is its first failed
// placement's, as Nomad's scheduler keeps it (checkFailedMetric); the
// simulator's had counted in NodesInPool the pool's nodes of other
// datacenters too, evaluated none and coalesced nothing.
func TestFidelityPlaceholderAnywhere(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		nodes := c.listNodes(t)
		dc2 := readyIn(nodes, "dc2")

		hold := c.jobID("anywhere")
		c.register(t, anywherePlaceholder(hold, []string{c.node.ID}, 2, 1))
		as := c.waitAllocs(t, hold, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 3 })
		for _, a := range as {
			if a.NodeID != dc2.ID {
				t.Errorf("allocation %s of group %s placed on %s, want dc2's %s (dc1's %s excluded)", a.ID[:8], a.TaskGroup, a.NodeName, dc2.Name, c.node.Name)
			}
		}
		j, _, err := c.client.Jobs().Info(hold, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(j.Datacenters, []string{"*"}) || j.NodePool == nil || *j.NodePool != api.NodePoolAll {
			t.Errorf("the job reads back with datacenters %q, node pool %v; want [*] and all", j.Datacenters, deref(j.NodePool))
		}
		if d, _, err := c.client.Jobs().LatestDeployment(hold, nil); err != nil || d != nil {
			t.Errorf("latest deployment of the placeholder: %+v, %v; want none", d, err)
		}

		// A hand-over: the first group down by one, at once.
		g0, g1 := *j.TaskGroups[0].Name, *j.TaskGroups[1].Name
		var other string
		for _, a := range as {
			if a.TaskGroup == g1 {
				other = a.ID
			}
		}
		if _, _, err := c.client.Jobs().Scale(hold, g0, new(1), "foreshape: hand over", false, nil, nil); err != nil {
			t.Fatalf("scale %s down: %v", g0, err)
		}
		as = c.waitAllocs(t, hold, "one of "+g0+" stopped", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool { return a.TaskGroup == g0 && stopping(a) }) == 1
		})
		for _, a := range as {
			if a.TaskGroup == g1 && (a.ID != other || !running(a)) {
				t.Errorf("group %s after %s was scaled down: %s %s/%s, want %s still running", g1, g0, a.ID[:8], a.DesiredStatus, a.ClientStatus, other[:8])
			}
		}
		if n := count(as, func(a *api.AllocationListStub) bool { return a.TaskGroup == g0 && running(a) }); n != 1 {
			t.Errorf("group %s runs %d after it was scaled down to 1: %s", g0, n, describe(as))
		}
		if d, _, err := c.client.Jobs().LatestDeployment(hold, nil); err != nil || d != nil {
			t.Errorf("latest deployment after the scale: %+v, %v; want none", d, err)
		}

		// Every node excluded: nothing placed.
		none := c.jobID("nowhere")
		resp := c.register(t, anywherePlaceholder(none, []string{c.node.ID, dc2.ID}, 2))
		ev := c.waitEval(t, resp.EvalID, "completed", func(e *api.Evaluation) bool { return e.Status != api.EvalStatusPending })
		checkFailedMetric(t, ev, "hold-0-50mhz-32mib", 2, map[string]int{"dc1": 1, "dc2": 1}, 1, map[string]int{
			"${node.unique.id} != " + c.node.ID: 1, "${node.unique.id} != " + dc2.ID: 1})
		sum := waitSummary(t, c, none, func(s *api.JobSummary) bool { return s.Summary["hold-0-50mhz-32mib"].Queued == 2 })
		if g := sum.Summary["hold-0-50mhz-32mib"]; g.Running != 0 || g.Starting != 0 {
			t.Errorf("summary with every node excluded: %+v", g)
		}
		if as, _, err := c.client.Jobs().Allocations(none, true, nil); err != nil || len(as) != 0 {
			t.Errorf("allocations with every node excluded: %s, %v; want none", describe(as), err)
		}

		// In dc1 alone, its node excluded: the metric counts dc1's node
		// alone, and two more placements coalesced.
		dc1 := c.jobID("dc1only")
		pj := anywherePlaceholder(dc1, []string{c.node.ID}, 3)
		pj.Datacenters, pj.NodePool = []string{"dc1"}, new("default")
		resp = c.register(t, pj)
		ev = c.waitEval(t, resp.EvalID, "completed", func(e *api.Evaluation) bool { return e.Status != api.EvalStatusPending })
		checkFailedMetric(t, ev, "hold-0-50mhz-32mib", 1, map[string]int{"dc1": 1}, 2, map[string]int{"${node.unique.id} != " + c.node.ID: 1})
	})
}

// checkFailedMetric checks the failed placements of group in ev's
// FailedTGAllocs as Nomad's scheduler fills them for placements no node is
// feasible for: the metric of the first (its ready nodes in the job's pool
// and datacenters, each evaluated and filtered by the constraints), and
// how many more failed with it (CoalescedFailures).
func checkFailedMetric(t *testing.T, ev *api.Evaluation, group string, inPool int, available map[string]int, coalesced int, filtered map[string]int) {
	t.Helper()
	m := ev.FailedTGAllocs[group]
	if ev.Status != api.EvalStatusComplete || ev.BlockedEval == "" || m == nil {
		t.Errorf("evaluation %s: %s, blocked %q, failed %v; want complete with a blocked one and %s failed", ev.ID[:8], ev.Status, ev.BlockedEval, ev.FailedTGAllocs, group)
		return
	}
	if m.NodesInPool != inPool || m.NodesEvaluated != inPool || m.NodesFiltered != inPool || !maps.Equal(m.NodesAvailable, available) ||
		m.CoalescedFailures != coalesced || !maps.Equal(m.ConstraintFiltered, filtered) || m.NodesExhausted != 0 {
		t.Errorf("failed metric of %s: in pool %d, evaluated %d, filtered %d, available %v, coalesced %d, constraints %v, exhausted %d; "+
			"want %d, %d, %d, %v, %d, %v, 0", group, m.NodesInPool, m.NodesEvaluated, m.NodesFiltered, m.NodesAvailable, m.CoalescedFailures,
			m.ConstraintFiltered, m.NodesExhausted, inPool, inPool, inPool, available, coalesced, filtered)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
