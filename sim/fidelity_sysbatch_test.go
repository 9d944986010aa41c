package sim_test

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// sysbatchJob is a sysbatch job of one group "g" in datacenters dcs whose
// raw_exec task sleeps secs seconds and exits 0 (sim.run_for on the
// simulator; 3600 or more: it sleeps on), never restarted.
func sysbatchJob(id string, secs int, dcs ...string) *api.Job {
	j := sleepJob(id, 1, 50, 32, 50)
	j.Type, j.Update, j.Datacenters = new(api.JobTypeSysbatch), nil, dcs
	tg := j.TaskGroups[0]
	tg.RestartPolicy = &api.RestartPolicy{Attempts: new(0), Mode: new("fail")}
	tg.Tasks[0].SetConfig("args", []string{strconv.Itoa(secs)})
	if secs < 3600 {
		tg.Meta = map[string]string{"sim.run_for": fmt.Sprintf("%ds", secs)}
	}
	return j
}

// sysbatchOn is a sysbatchJob pinned to the check's node (its datacenter,
// its ID).
func (c *cluster) sysbatchOn(id string, secs int) *api.Job {
	j := sysbatchJob(id, secs, c.node.Datacenter)
	j.Constrain(api.NewConstraint("${node.unique.id}", "=", c.node.ID))
	return j
}

// logSysbatch logs the job's allocations and evaluations, oldest first.
func (c *cluster) logSysbatch(t *testing.T, id, what string) ([]*api.AllocationListStub, []*api.Evaluation) {
	t.Helper()
	allocs, _, err := c.client.Jobs().Allocations(id, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(allocs, func(i, k int) bool { return allocs[i].CreateIndex < allocs[k].CreateIndex })
	evals, _, err := c.client.Jobs().Evaluations(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(evals, func(i, k int) bool { return evals[i].CreateIndex < evals[k].CreateIndex })
	var as, es []string
	for _, a := range allocs {
		as = append(as, fmt.Sprintf("%.8s %s on %s v%d %s(%q)/%s(%q)", a.ID, a.Name, a.NodeName, a.JobVersion,
			a.DesiredStatus, a.DesiredDescription, a.ClientStatus, a.ClientDescription))
	}
	for _, e := range evals {
		es = append(es, fmt.Sprintf("%d %s %s node %.8s", e.CreateIndex, e.TriggeredBy, e.Status, e.NodeID))
	}
	t.Logf("%s: %s: allocations %s; evaluations %s", c.name, what, strings.Join(as, "; "), strings.Join(es, "; "))
	return allocs, evals
}

// forceEval evaluates the job (nomad job eval) and waits for the
// evaluation to complete; it returns it.
func (c *cluster) forceEval(t *testing.T, id string) *api.Evaluation {
	t.Helper()
	eid, _, err := c.client.Jobs().ForceEvaluate(id, nil)
	if err != nil {
		t.Fatalf("%s: evaluate %s: %v", c.name, id, err)
	}
	return c.waitEval(t, eid, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
}

// readyNodesIn are the IDs of the ready, eligible nodes in dcs.
func (c *cluster) readyNodesIn(t *testing.T, dcs ...string) []string {
	t.Helper()
	nodes := c.listNodes(t)
	var out []string
	for _, n := range nodes {
		if n.Status == api.NodeStatusReady && n.SchedulingEligibility == api.NodeSchedulingEligible && slices.Contains(dcs, n.Datacenter) {
			out = append(out, n.ID)
		}
	}
	slices.Sort(out)
	return out
}

// previous is the PreviousAllocation of allocation id.
func (c *cluster) previous(t *testing.T, id string) string {
	t.Helper()
	a, _, err := c.client.Allocations().Info(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.PreviousAllocation
}

// allocNodes are the nodes of allocs, sorted.
func allocNodes(allocs []*api.AllocationListStub) []string {
	var out []string
	for _, a := range allocs {
		out = append(out, a.NodeID)
	}
	slices.Sort(out)
	return out
}

// TestFidelitySysbatchRunsOnce: a sysbatch job registered in dc1 and dc2
// gets one allocation on each ready, eligible node of those datacenters
// (named JOB.g[0], all from its job-register evaluation); each runs once
// and ends complete ("All tasks have completed"), still desired to run,
// and nothing replaces it: the job is dead, its summary counting them
// complete, and an evaluation of the job afterwards (nomad job eval,
// triggered by job-register) places nothing. Measured on a real Nomad
// 2.0.6-dev with a client in dc1 and one in dc2.
func TestFidelitySysbatchRunsOnce(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		id := c.jobID("sysbatch")
		want := c.readyNodesIn(t, "dc1", "dc2")
		reg := c.register(t, sysbatchJob(id, 3, "dc1", "dc2"))
		allocs := c.waitAllocs(t, id, "one on each node", func(as []*api.AllocationListStub) bool { return len(as) >= len(want) })
		if got := allocNodes(allocs); !slices.Equal(got, want) {
			t.Errorf("%s: allocations on %v; want one on each ready, eligible node of dc1 and dc2: %v", c.name, got, want)
		}
		for _, a := range allocs {
			if a.Name != id+".g[0]" || a.EvalID != reg.EvalID || a.JobType != api.JobTypeSysbatch {
				t.Errorf("%s: allocation %s of evaluation %.8s, job type %q; want %s.g[0] of the registration's %.8s, sysbatch", c.name, a.Name, a.EvalID, a.JobType, id, reg.EvalID)
			}
		}
		done := c.waitAllocs(t, id, "complete", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool { return a.ClientStatus == api.AllocClientStatusComplete }) == len(want)
		})
		for _, a := range done {
			if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientDescription != "All tasks have completed" {
				t.Errorf("%s: ended allocation on %s: %s, %q; want run, All tasks have completed", c.name, a.NodeName, a.DesiredStatus, a.ClientDescription)
			}
		}
		j := c.waitJob(t, id, "dead", func(j *api.Job) bool { return *j.Status == "dead" })
		s := waitSummary(t, c, id, func(s *api.JobSummary) bool { return s.Summary["g"].Complete == len(want) })
		if g := s.Summary["g"]; g.Running != 0 || g.Queued != 0 || g.Lost != 0 {
			t.Errorf("%s: summary %+v; want %d complete alone", c.name, g, len(want))
		}
		ev := c.forceEval(t, id)
		allocs, evals := c.logSysbatch(t, id, "evaluated after they ended")
		if len(allocs) != len(want) || ev.TriggeredBy != "job-register" {
			t.Errorf("%s: after an evaluation (%s) of the ended job (version %d): %s; want %d allocations, none placed again, job-register",
				c.name, ev.TriggeredBy, *j.Version, describe(allocs), len(want))
		}
		for _, e := range evals {
			if e.TriggeredBy != "job-register" || e.Status != api.EvalStatusComplete {
				t.Errorf("%s: evaluation %s %s; want only the registration's and the forced one's, complete", c.name, e.TriggeredBy, e.Status)
			}
		}
	})
}

// TestFidelitySysbatchNewNode: a node that turns eligible after a
// sysbatch job was registered (a node joining) gets nothing from it until
// the job is evaluated again: Nomad's server evaluates no sysbatch job for
// a node (none in the eligibility answer, no node-update evaluation of the
// job). An evaluation of the job then places one there and leaves the
// other node's allocation as it is; a new version whose task changed runs
// the job again on both nodes, each new allocation naming the one it
// replaces ("alloc is being updated due to job update"). Measured on a
// real Nomad 2.0.6-dev, with the dc2 client's node made ineligible and
// eligible again.
func TestFidelitySysbatchNewNode(t *testing.T) {
	forEachNomadIn(t, twoDCScenario, lacksDC2, func(t *testing.T, c *cluster) {
		nodes := c.listNodes(t)
		late := readyIn(nodes, "dc2")
		if _, err := c.client.Nodes().ToggleEligibility(late.ID, false, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = c.client.Nodes().ToggleEligibility(late.ID, true, nil) })
		id := c.jobID("sysbatchnew")
		c.register(t, sysbatchJob(id, 3600, "dc1", "dc2"))
		first := c.waitAllocs(t, id, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		if first[0].NodeID == late.ID {
			t.Fatalf("%s: placed on the ineligible node %s", c.name, late.Name)
		}

		resp, err := c.client.Nodes().ToggleEligibility(late.ID, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, eid := range resp.EvalIDs {
			if e, _, err := c.client.Evaluations().Info(eid, nil); err == nil && e.JobID == id {
				t.Errorf("%s: the node made eligible evaluates the sysbatch job (%s); want no evaluation of it", c.name, e.TriggeredBy)
			}
		}
		c.waitNode(t, "eligible", func(*api.Node) bool { return true })
		allocs, evals := c.logSysbatch(t, id, "the node eligible")
		if len(allocs) != 1 || len(evals) != 1 {
			t.Errorf("%s: once the node is eligible: %s, %d evaluations; want the first allocation alone, the registration's evaluation alone", c.name, describe(allocs), len(evals))
		}

		ev := c.forceEval(t, id)
		c.waitAllocs(t, id, "placed on the node", func(as []*api.AllocationListStub) bool { return len(as) == 2 })
		allocs, _ = c.logSysbatch(t, id, "evaluated")
		for _, a := range allocs {
			if a.ID == first[0].ID {
				if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusRunning {
					t.Errorf("%s: the first allocation after the evaluation: %s/%s; want it running on", c.name, a.DesiredStatus, a.ClientStatus)
				}
			} else if prev := c.previous(t, a.ID); a.NodeID != late.ID || a.EvalID != ev.ID || prev != "" {
				t.Errorf("%s: placed on %s by %.8s after %q; want on %s by the evaluation %.8s, naming none", c.name, a.NodeName, a.EvalID, prev, late.Name, ev.ID)
			}
		}

		j := sysbatchJob(id, 3601, "dc1", "dc2")
		c.register(t, j)
		c.waitAllocs(t, id, "run again", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool {
				return a.JobVersion == 1 && a.DesiredStatus == api.AllocDesiredStatusRun
			}) == 2
		})
		allocs, _ = c.logSysbatch(t, id, "a new version")
		old := map[string]*api.AllocationListStub{}
		for _, a := range allocs {
			if a.JobVersion == 0 {
				old[a.ID] = a
				if a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is being updated due to job update" {
					t.Errorf("%s: version 0's allocation on %s: %s (%q); want stop (alloc is being updated due to job update)", c.name, a.NodeName, a.DesiredStatus, a.DesiredDescription)
				}
			}
		}
		for _, a := range allocs {
			if a.JobVersion != 1 {
				continue
			}
			if prev := c.previous(t, a.ID); old[prev] == nil || old[prev].NodeID != a.NodeID {
				t.Errorf("%s: version 1's allocation on %s names %q; want the one it replaces on its node", c.name, a.NodeName, prev)
			}
		}
	})
}

// TestFidelitySysbatchDrain: Nomad's drainer leaves a sysbatch allocation
// to end, as a batch one, whatever ignore_system_jobs says: the drain
// does not mark it (its desired status stays run) and cannot complete
// while it runs. At the drain's deadline the drainer marks it to migrate
// with a node-drain evaluation, whose plan stops it ("alloc not needed as
// node is tainted") and places nothing, and the drain completes
// (deadline_reached). Nor does the drain complete when the allocation
// ends on its own: Nomad's drainer watches no sysbatch job, so it checks
// the node again only at the deadline (then it completes with
// deadline_reached, no evaluation) or when the drain's strategy changes
// (then at once, without it); the same spec sent again is no change.
// Measured on a real Nomad 2.0.6-dev dev agent's node: marked 30 s after
// a 30 s drain began, with and without ignore_system_jobs; a 15 s
// allocation under a 60 s drain ended 12 s into it, the drain completed
// at 61 s; with no deadline, still draining 43 s after it ended (and
// after the same spec again), complete at once when ignore_system_jobs
// was flipped.
func TestFidelitySysbatchDrain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ignore   bool
		deadline time.Duration
		secs     int // the allocation's run; 3600: it runs past the deadline
	}{
		{"deadline", false, 20 * time.Second, 3600},
		{"deadline ignoring system jobs", true, 20 * time.Second, 3600},
		{"ended before the deadline", false, 30 * time.Second, 5},
		{"ended without a deadline", false, 0, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachNomad(t, func(t *testing.T, c *cluster) {
				id := c.jobID("sysbatchdrain")
				c.register(t, c.sysbatchOn(id, tc.secs))
				orig := c.waitAllocs(t, id, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })[0].ID
				c.giveBackAtEnd(t)
				spec := &api.DrainSpec{Deadline: tc.deadline, IgnoreSystemJobs: tc.ignore}
				if _, err := c.client.Nodes().UpdateDrain(c.node.ID, spec, false, nil); err != nil {
					t.Fatal(err)
				}
				set, _, err := c.client.Nodes().Info(c.node.ID, nil)
				if err != nil || set.DrainStrategy == nil {
					t.Fatalf("%s: the node after the drain was set: %v", c.name, err)
				}
				a := c.waitAlloc(t, orig, "marked or ended", func(a *api.Allocation) bool {
					return a.DesiredTransition.ShouldMigrate() || a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus != api.AllocClientStatusRunning
				})
				c.logAlloc(t, "marked or ended", a)
				if tc.secs < 3600 {
					// It ends on its own, never marked, and the drain goes on.
					a = c.waitAlloc(t, orig, "complete", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
					n, _, err := c.client.Nodes().Info(c.node.ID, nil)
					if err != nil {
						t.Fatal(err)
					}
					if a.DesiredTransition.ShouldMigrate() || a.DesiredStatus != api.AllocDesiredStatusRun || n.DrainStrategy == nil {
						t.Errorf("%s: the allocation ended: migrate %v, %s; drain %v; want it run/complete, never marked, the drain still on",
							c.name, a.DesiredTransition.ShouldMigrate(), a.DesiredStatus, n.DrainStrategy)
					}
				}
				if tc.deadline == 0 {
					time.Sleep(3 * time.Second) // 30 s on the simulator
					if n, _, err := c.client.Nodes().Info(c.node.ID, nil); err != nil || n.DrainStrategy == nil {
						t.Fatalf("%s: the drain 3 s after the allocation ended: %v; want it still on", c.name, err)
					}
					if _, err := c.client.Nodes().UpdateDrain(c.node.ID, spec, false, nil); err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Second)
					if n, _, err := c.client.Nodes().Info(c.node.ID, nil); err != nil || n.DrainStrategy == nil {
						t.Fatalf("%s: the drain a second after the same spec was sent again: %v; want it still on", c.name, err)
					}
					spec.IgnoreSystemJobs = !spec.IgnoreSystemJobs
					if _, err := c.client.Nodes().UpdateDrain(c.node.ID, spec, false, nil); err != nil {
						t.Fatal(err)
					}
				}
				n := c.waitNode(t, "drained", func(n *api.Node) bool { return n.DrainStrategy == nil })
				allocs, evals := c.logSysbatch(t, id, "drained")
				if len(allocs) != 1 {
					t.Errorf("%s: allocations after the drain: %s; want the drained one alone", c.name, describe(allocs))
				}
				a, _, err = c.client.Allocations().Info(orig, nil)
				if err != nil {
					t.Fatal(err)
				}
				drains := countEvals(evals, func(e *api.Evaluation) bool { return e.TriggeredBy == "node-drain" })
				e := lastNodeEvent(n)
				deadlined := "true"
				if tc.deadline == 0 {
					deadlined = ""
				}
				if e.Message != "Node drain complete" || e.Details["deadline_reached"] != deadlined {
					t.Errorf("%s: the node's last event %q %v; want Node drain complete, deadline_reached %q", c.name, e.Message, e.Details, deadlined)
				}
				if tc.secs < 3600 {
					if a.DesiredTransition.ShouldMigrate() || a.DesiredStatus != api.AllocDesiredStatusRun || drains != 0 {
						t.Errorf("%s: the allocation that ended: migrate %v, %s, %d node-drain evaluations; want it never marked, no node-drain evaluation",
							c.name, a.DesiredTransition.ShouldMigrate(), a.DesiredStatus, drains)
					}
					return
				}
				if !a.DesiredTransition.ShouldMigrate() || a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc not needed as node is tainted" || drains != 1 {
					t.Errorf("%s: at the deadline: the allocation migrate %v, %s (%q), %d node-drain evaluations; "+
						"want it marked and stopped (alloc not needed as node is tainted) by one node-drain evaluation",
						c.name, a.DesiredTransition.ShouldMigrate(), a.DesiredStatus, a.DesiredDescription, drains)
				}
				for _, e := range evals {
					// Nomad's drainer marks it without moving its
					// ModifyTime: its evaluation tells when.
					if at := time.Unix(0, e.CreateTime); e.TriggeredBy == "node-drain" && at.Before(set.DrainStrategy.ForceDeadline.Add(-time.Second)) {
						t.Errorf("%s: the sysbatch allocation marked %s after the drain began, before its deadline (%s); want it left until then",
							c.name, at.Sub(set.DrainStrategy.StartedAt).Round(time.Second), tc.deadline)
					}
				}
				c.waitAlloc(t, orig, "stopped", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
			})
		})
	}
}

// TestFidelitySysbatchStop: stopping a sysbatch allocation (nomad alloc
// stop) marks it to migrate with an alloc-stop evaluation, whose plan
// stops it ("alloc not needed as node is tainted") and places nothing,
// there or elsewhere. Measured on a real Nomad 2.0.6-dev.
func TestFidelitySysbatchStop(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("sysbatchstop")
		c.register(t, c.sysbatchOn(id, 3600))
		orig := c.waitAllocs(t, id, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })[0].ID
		resp, err := c.client.Allocations().Stop(&api.Allocation{ID: orig}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ev := c.waitEval(t, resp.EvalID, "complete", func(e *api.Evaluation) bool { return e.Status == api.EvalStatusComplete })
		a := c.waitAlloc(t, orig, "stopped", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
		allocs, _ := c.logSysbatch(t, id, "stopped")
		if ev.TriggeredBy != "alloc-stop" || !a.DesiredTransition.ShouldMigrate() || a.DesiredStatus != api.AllocDesiredStatusStop ||
			a.DesiredDescription != "alloc not needed as node is tainted" || a.NextAllocation != "" || len(allocs) != 1 {
			t.Errorf("%s: stopped by %s: migrate %v, %s (%q), next %q, %d allocations; want alloc-stop, marked, stop (alloc not needed as node is tainted), nothing placed",
				c.name, ev.TriggeredBy, a.DesiredTransition.ShouldMigrate(), a.DesiredStatus, a.DesiredDescription, a.NextAllocation, len(allocs))
		}
	})
}

// TestFidelitySysbatchNodeDown: Nomad's server evaluates no sysbatch job
// for a node that goes down, so its sysbatch allocation there stays as
// its client last reported it (running, desired to run) and nothing
// replaces it; it runs on when the node is back. An evaluation of the job
// while the node is down finds it lost ("alloc is lost since its node is
// down") and places nothing; when the node is back its client reports it
// complete, and the job is not run there again, even when evaluated.
// Measured on a real Nomad 2.0.6-dev with a second client stopped
// (SIGSTOP) and continued.
func TestFidelitySysbatchNodeDown(t *testing.T) {
	forEachNomadIn(t, disconnectScenario, nil, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		left, evaluated := c.jobID("sysbatchdown"), c.jobID("sysbatchlost")
		orig := map[string]string{}
		for _, id := range []string{left, evaluated} {
			c.register(t, c.sysbatchOn(id, 3600))
			orig[id] = c.waitAllocs(t, id, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })[0].ID
		}

		takeDown()
		c.waitNode(t, "down", func(n *api.Node) bool { return n.Status == api.NodeStatusDown })
		for _, id := range []string{left, evaluated} {
			allocs, evals := c.logSysbatch(t, id, "node down")
			if len(allocs) != 1 || !running(allocs[0]) || len(evals) != 1 {
				t.Errorf("%s: %s with its node down: %s, %d evaluations; want its allocation running still, the registration's evaluation alone", c.name, id, describe(allocs), len(evals))
			}
		}
		c.forceEval(t, evaluated)
		a := c.waitAlloc(t, orig[evaluated], "lost", func(a *api.Allocation) bool { return a.ClientStatus != api.AllocClientStatusRunning })
		c.logAlloc(t, "evaluated while down", a)
		if a.ClientStatus != api.AllocClientStatusLost || a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is lost since its node is down" {
			t.Errorf("%s: evaluated with its node down: %s (%q) / %s; want stop (alloc is lost since its node is down) / lost", c.name, a.DesiredStatus, a.DesiredDescription, a.ClientStatus)
		}
		if allocs, _ := c.logSysbatch(t, evaluated, "evaluated while down"); len(allocs) != 1 {
			t.Errorf("%s: evaluated with its node down: %s; want the lost allocation alone", c.name, describe(allocs))
		}

		bringUp()
		c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		c.waitAlloc(t, orig[evaluated], "reported complete", func(a *api.Allocation) bool { return a.ClientStatus == api.AllocClientStatusComplete })
		c.forceEval(t, evaluated)
		allocs, _ := c.logSysbatch(t, evaluated, "back and evaluated")
		if len(allocs) != 1 {
			t.Errorf("%s: the lost one's job back and evaluated: %s; want nothing placed again", c.name, describe(allocs))
		}
		allocs, evals := c.logSysbatch(t, left, "back")
		if len(allocs) != 1 || allocs[0].ID != orig[left] || !running(allocs[0]) || len(evals) != 1 {
			t.Errorf("%s: the other job back: %s, %d evaluations; want its allocation running on, no evaluation", c.name, describe(allocs), len(evals))
		}
	})
}

// TestFidelitySysbatchFailed: a sysbatch allocation whose task fails
// (restarts off) ends failed, still desired to run, with no follow-up
// evaluation and nothing placed for it; the job is dead, its summary
// counting it failed, and an evaluation of the job places nothing again.
// Measured on a real Nomad 2.0.6-dev (a task running /bin/false; the
// simulator fails it by FailAlloc).
func TestFidelitySysbatchFailed(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		id := c.jobID("sysbatch-failed")
		j := c.sysbatchOn(id, 3600)
		j.TaskGroups[0].Tasks[0].Config = map[string]any{"command": "/bin/false"}
		c.register(t, j)
		if c.sim != nil {
			as := c.waitAllocs(t, id, "ran", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
			if err := c.sim.FailAlloc(as[0].ID, "exit 1"); err != nil {
				t.Fatal(err)
			}
		}
		failed := c.waitAllocs(t, id, "failed", func(as []*api.AllocationListStub) bool {
			return len(as) == 1 && as[0].ClientStatus == api.AllocClientStatusFailed
		})[0]
		a, _, err := c.client.Allocations().Info(failed.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.DesiredStatus != api.AllocDesiredStatusRun || a.FollowupEvalID != "" || a.NextAllocation != "" {
			t.Errorf("%s: the failed allocation: %s, follow-up %q, next %q; want run, no follow-up, no replacement",
				c.name, a.DesiredStatus, a.FollowupEvalID, a.NextAllocation)
		}
		ts := a.TaskStates[j.TaskGroups[0].Tasks[0].Name]
		if a.ClientDescription != "Failed tasks" || ts == nil || ts.State != "dead" || !ts.Failed {
			t.Errorf("%s: the failed allocation's description %q, its task %+v; want Failed tasks, the task dead and failed", c.name, a.ClientDescription, ts)
		}
		c.waitJob(t, id, "dead", func(j *api.Job) bool { return *j.Status == "dead" })
		s := waitSummary(t, c, id, func(s *api.JobSummary) bool { return s.Summary["g"].Failed == 1 })
		if g := s.Summary["g"]; g.Running != 0 || g.Queued != 0 || g.Complete != 0 {
			t.Errorf("%s: summary %+v; want one failed alone", c.name, g)
		}
		ev := c.forceEval(t, id)
		allocs, evals := c.logSysbatch(t, id, "evaluated after it failed")
		if len(allocs) != 1 || ev.TriggeredBy != "job-register" {
			t.Errorf("%s: after an evaluation (%s) of the failed job: %s; want the one allocation, none placed again", c.name, ev.TriggeredBy, describe(allocs))
		}
		for _, e := range evals {
			if e.TriggeredBy != "job-register" || e.Status != api.EvalStatusComplete {
				t.Errorf("%s: evaluation %s %s; want only the registration's and the forced one's, complete", c.name, e.TriggeredBy, e.Status)
			}
		}
	})
}
