package sim_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/realnomad"
	"github.com/foreshape/foreshape/sim"
)

// nodeEvalJobs registers the three jobs the node-evaluation checks use,
// each of one allocation on the check's node: a service job, a batch job
// and a system job, and waits until they run. It returns their IDs.
func nodeEvalJobs(t *testing.T, c *cluster, what string) (svc, bat, sys string) {
	t.Helper()
	svc = c.jobID(what + "svc")
	c.register(t, sleepJob(svc, 1, 50, 32, 50))
	bat = c.jobID(what + "batch")
	j := sleepJob(bat, 1, 50, 32, 50)
	j.Type, j.Update = new(api.JobTypeBatch), nil
	j.TaskGroups[0].Tasks[0].SetConfig("args", []string{"600"})
	c.register(t, j)
	sys = c.jobID(what + "system")
	c.register(t, systemJob(sys))
	for _, jid := range []string{svc, bat, sys} {
		c.waitAllocs(t, jid, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
	}
	return svc, bat, sys
}

// systemJob is a system job of one small task, run on every eligible
// node of its datacenter.
func systemJob(id string) *api.Job {
	j := sleepJob(id, 1, 50, 32, 50)
	j.Type, j.Update = new(api.JobTypeSystem), nil
	return j
}

// checkNodeEvals reads evaluations evalIDs and checks each is a
// node-update evaluation of the check's node at node index nodeIndex,
// created at index created, and that those of jobs in ours are one each
// of want (evaluations of jobs the check did not register, others' on a
// shared Nomad, are not counted).
func checkNodeEvals(t *testing.T, c *cluster, what string, evalIDs []string, created, nodeIndex uint64, ours []string, want ...string) {
	t.Helper()
	var got []string
	for _, eid := range evalIDs {
		ev, _, err := c.client.Evaluations().Info(eid, nil)
		if err != nil {
			t.Fatalf("%s: %s: read evaluation %s: %v", c.name, what, eid, err)
		}
		if ev.TriggeredBy != "node-update" || ev.NodeID != c.node.ID || ev.NodeModifyIndex != nodeIndex || ev.CreateIndex != created {
			t.Errorf("%s: %s: evaluation of %s triggered by %q for node %s at node index %d, created at %d; want node-update for %s at %d, created at %d",
				c.name, what, ev.JobID, ev.TriggeredBy, ev.NodeID, ev.NodeModifyIndex, ev.CreateIndex, c.node.ID, nodeIndex, created)
		}
		if slices.Contains(ours, ev.JobID) {
			got = append(got, ev.JobID)
		}
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: %s: evaluations of %v; want one each of %v", c.name, what, got, want)
	}
}

// TestFidelityNodeEvaluate: PUT /v1/node/:id/evaluate (`nomad node eval`,
// Nomad's Node.Evaluate) evaluates the jobs Nomad's server evaluates for
// a node (Node.createNodeEvals), as when it turns eligible: each job with
// an allocation on it that is not done (a service allocation until both
// the server and the client have stopped it, a batch one until its
// client has) and each system job that may run there, whatever the
// node's eligibility. Each is a node-update evaluation naming the node at
// its modify index as it is (the call changes no node), all created at
// one index. The answer is Nomad's whole NodeUpdateResponse: the
// evaluations, their index as Index and X-Nomad-Index, no
// NodeModifyIndex and no EvalID (nomad/api's ForceEvaluate returns ""),
// with the server's information a heartbeat's answer carries: the
// leader's RPC address, the servers, the node count and the node's
// eligibility. A node whose allocations are all done has nothing
// evaluated, yet the empty set is committed at an index of its own,
// which moves no table (only a node with no allocation Nomad still holds
// and no system job answers 0). The simulator evaluated each job with an
// allocation on the node and every system job, of any datacenter, pool
// or stopped, each at its own index, and answered with an EvalID and the
// node's modify index but no Index and no server information; then, with
// nothing to evaluate, index 0.
func TestFidelityNodeEvaluate(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		c.giveBackAtEnd(t)
		svc, bat, sys := nodeEvalJobs(t, c, "nodeeval")
		ours := []string{svc, bat, sys}
		leader, err := c.client.Status().Leader()
		if err != nil {
			t.Fatal(err)
		}
		evaluate := func(what, eligibility string, want ...string) {
			t.Helper()
			n, _, err := c.client.Nodes().Info(c.node.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			nodes := c.listNodes(t)
			resp, raw := putNode(t, c, "evaluate")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s: %d %s", c.name, what, resp.StatusCode, raw)
			}
			t.Logf("%s: %s: node modify index %d, X-Nomad-Index %s: %s", c.name, what, n.ModifyIndex, resp.Header.Get("X-Nomad-Index"), raw)
			nodeUpdateFields(t, c, what, raw)
			var out struct {
				EvalIDs                                 []string
				EvalCreateIndex, Index, NodeModifyIndex uint64
				HeartbeatTTL                            int64
				LeaderRPCAddr, SchedulingEligibility    string
				NumNodes                                int
				Servers                                 []struct {
					RPCAdvertiseAddr, Datacenter     string
					RPCMajorVersion, RPCMinorVersion int
				}
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatal(err)
			}
			index, _ := strconv.ParseUint(resp.Header.Get("X-Nomad-Index"), 10, 64)
			// The node has allocations (done ones at the least), so
			// the evaluations are committed at an index of their own
			// even when there are none.
			if out.Index != out.EvalCreateIndex || index != out.Index || out.NodeModifyIndex != 0 || out.EvalCreateIndex == 0 {
				t.Errorf("%s: %s: %d evaluations at %d, Index %d, X-Nomad-Index %d, NodeModifyIndex %d; want Index and X-Nomad-Index the evaluations' index, not 0, NodeModifyIndex 0",
					c.name, what, len(out.EvalIDs), out.EvalCreateIndex, out.Index, index, out.NodeModifyIndex)
			}
			if len(out.EvalIDs) == 0 {
				_, qm, err := c.client.Evaluations().List(nil)
				if err != nil {
					t.Fatal(err)
				}
				if qm.LastIndex >= out.EvalCreateIndex {
					t.Errorf("%s: %s: no evaluations, committed at %d, but the evaluations' index is %d; want below it: an empty commit moves no table",
						c.name, what, out.EvalCreateIndex, qm.LastIndex)
				}
			}
			if out.HeartbeatTTL != 0 || out.LeaderRPCAddr != leader || out.NumNodes != len(nodes) || out.SchedulingEligibility != eligibility ||
				len(out.Servers) != 1 || out.Servers[0].RPCAdvertiseAddr != leader || out.Servers[0].Datacenter != c.node.Datacenter {
				t.Errorf("%s: %s: the answer's server information: %s; want no heartbeat TTL, leader %s, %d nodes, %s, the one server in %s",
					c.name, what, raw, leader, len(nodes), eligibility, c.node.Datacenter)
			}
			checkNodeEvals(t, c, what, out.EvalIDs, out.EvalCreateIndex, n.ModifyIndex, ours, want...)
			if n2, _, err := c.client.Nodes().Info(c.node.ID, nil); err != nil || n2.ModifyIndex != n.ModifyIndex {
				t.Errorf("%s: %s: the node's modify index after: %v; want %d as before", c.name, what, err, n.ModifyIndex)
			}
		}
		evaluate("evaluate", api.NodeSchedulingEligible, svc, bat, sys)

		// nomad/api reads an EvalID Nomad's answer does not have.
		evalID, wm, err := c.client.Nodes().ForceEvaluate(c.node.ID, nil)
		if err != nil || evalID != "" || wm.LastIndex == 0 {
			t.Errorf("%s: ForceEvaluate: %q at %v, %v; want no evaluation ID, an index", c.name, evalID, wm, err)
		}

		// Ineligible, the node's jobs are evaluated all the same.
		if _, err := c.client.Nodes().ToggleEligibility(c.node.ID, false, nil); err != nil {
			t.Fatal(err)
		}
		evaluate("evaluate an ineligible node", api.NodeSchedulingIneligible, svc, bat, sys)

		// A stopped service allocation its client has stopped is done.
		if _, _, err := c.client.Jobs().Deregister(svc, false, nil); err != nil {
			t.Fatal(err)
		}
		c.waitAllocs(t, svc, "stopped by its client", func(as []*api.AllocationListStub) bool {
			return len(as) == 1 && as[0].ClientStatus != api.AllocClientStatusRunning && as[0].ClientStatus != api.AllocClientStatusPending
		})
		evaluate("evaluate with the service allocation done", api.NodeSchedulingIneligible, bat, sys)

		// With every allocation of the check's done (the system job
		// stopped, not purged), nothing is evaluated, yet the empty set
		// of evaluations is committed at an index of its own.
		for _, jid := range []string{bat, sys} {
			if _, _, err := c.client.Jobs().Deregister(jid, false, nil); err != nil {
				t.Fatal(err)
			}
			c.waitAllocs(t, jid, "stopped by its client", func(as []*api.AllocationListStub) bool {
				return len(as) == 1 && as[0].ClientStatus != api.AllocClientStatusRunning && as[0].ClientStatus != api.AllocClientStatusPending
			})
		}
		evaluate("evaluate with every allocation done", api.NodeSchedulingIneligible)
	})
}

// TestFidelityNodeDownAndUp: a node whose heartbeat is missed goes down
// and comes back when it is heard again, as Nomad's Node.UpdateStatus
// takes it: the status at one index, with the node event "Node heartbeat
// missed" (down) or "Node reregistered by heartbeat" (back from down)
// at it; then a node-update evaluation naming the node at that index
// for each job Nomad's createNodeEvals picks (each job with an
// allocation on the node not done, each system job not stopped of the
// node's datacenter and pool), all created at one index above it. Going
// down, each evaluation's plan stops its job's allocations on the node
// as lost ("alloc is lost since its node is down", the client's
// description as the client last reported it); back up, only the system
// job is evaluated (the others' allocations there are done), and the
// client, heard again, reports what was lost complete. On a real Nomad
// 2.0.6-dev with a second client agent stopped and continued
// (SIGSTOP/SIGCONT): down about 20 s after the stop, the evaluations at
// one index above the status's. The simulator evaluated a node that went
// down job by job, each at its own index, with no node event and the
// client description replaced; one that came back left its lost
// allocations lost.
//
// A Nomad dev agent's own node cannot be taken down while its client
// runs, so against a real Nomad the check needs another client node and
// two commands: NOMAD_DOWN_NODE names the node (its name), and
// NOMAD_NODE_DOWN_CMD and NOMAD_NODE_UP_CMD stop and resume its client's
// heartbeats (run with sh -c).
func TestFidelityNodeDownAndUp(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		takeDown, bringUp := c.nodeDownUp(t)
		c = c.pinned()
		svc, bat, sys := nodeEvalJobs(t, c, "downup")
		// A stopped system job and one of another datacenter are not
		// evaluated.
		stopped := c.jobID("downupstopped")
		c.register(t, systemJob(stopped))
		c.waitAllocs(t, stopped, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		if _, _, err := c.client.Jobs().Deregister(stopped, false, nil); err != nil {
			t.Fatal(err)
		}
		c.waitAllocs(t, stopped, "stopped by its client", func(as []*api.AllocationListStub) bool {
			return len(as) == 1 && as[0].ClientStatus == api.AllocClientStatusComplete
		})
		elsewhere := c.jobID("downupelsewhere")
		j := systemJob(elsewhere)
		j.Datacenters = []string{"fidelity-nowhere"}
		c.register(t, j)
		ours := []string{svc, bat, sys, stopped, elsewhere}

		takeDown()
		down := c.waitNode(t, "down", func(n *api.Node) bool { return n.Status == api.NodeStatusDown })
		downAt := c.nodeEventAt(t, down, "Node heartbeat missed")
		lost := map[string]string{}
		for _, jid := range []string{svc, bat, sys} {
			as := c.waitAllocs(t, jid, "lost", func(as []*api.AllocationListStub) bool {
				return count(as, func(a *api.AllocationListStub) bool { return a.ClientStatus == api.AllocClientStatusLost }) == 1
			})
			for _, a := range as {
				if a.ClientStatus != api.AllocClientStatusLost {
					continue
				}
				lost[a.ID] = jid
				if a.DesiredStatus != api.AllocDesiredStatusStop || a.DesiredDescription != "alloc is lost since its node is down" ||
					a.ClientDescription != "Tasks are running" || a.ModifyIndex <= downAt {
					t.Errorf("%s: %s's allocation on the node gone down: %s (%q) / %s (%q) at %d; want stop (alloc is lost since its node is down) / lost (Tasks are running) above %d",
						c.name, jid, a.DesiredStatus, a.DesiredDescription, a.ClientStatus, a.ClientDescription, a.ModifyIndex, downAt)
				}
			}
		}
		ids, created := c.nodeUpdateEvals(t, downAt)
		checkNodeEvals(t, c, "down", ids, created, downAt, ours, svc, bat, sys)

		bringUp()
		up := c.waitNode(t, "ready", func(n *api.Node) bool { return n.Status == api.NodeStatusReady })
		upAt := c.nodeEventAt(t, up, "Node reregistered by heartbeat")
		c.waitAllocs(t, sys, "back on the node", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		ids, created = c.nodeUpdateEvals(t, upAt)
		checkNodeEvals(t, c, "back up", ids, created, upAt, ours, sys)
		for id, jid := range lost {
			c.waitAlloc(t, id, jid+"'s lost allocation reported complete by its client", func(a *api.Allocation) bool {
				return a.ClientStatus == api.AllocClientStatusComplete && a.ClientDescription == "All tasks have completed" &&
					a.DesiredStatus == api.AllocDesiredStatusStop && a.DesiredDescription == "alloc is lost since its node is down"
			})
		}
	})
}

// nodeDownUp returns how the check takes its node down and brings it up
// again: on the simulator its faults; on a real Nomad the commands
// NOMAD_NODE_DOWN_CMD and NOMAD_NODE_UP_CMD for the node NOMAD_DOWN_NODE,
// which becomes the check's node (the check skips without them). The
// node is brought up again when the check ends.
func (c *cluster) nodeDownUp(t *testing.T) (down, up func()) {
	t.Helper()
	if c.sim != nil {
		down = func() {
			if err := c.sim.SetFaults(sim.Faults{NodesDown: []string{c.node.ID}}); err != nil {
				t.Fatal(err)
			}
		}
		up = func() {
			if err := c.sim.SetFaults(sim.Faults{}); err != nil {
				t.Fatal(err)
			}
		}
		return down, up
	}
	name, down, up := realnomad.NodeDownUp(t)
	for _, n := range c.listNodes(t) {
		if n.Name != name {
			continue
		}
		var err error
		if c.node, _, err = c.client.Nodes().Info(n.ID, nil); err != nil {
			t.Fatal(err)
		}
		return down, up
	}
	t.Fatalf("no node named %q (NOMAD_DOWN_NODE) in %s", name, c.name)
	return nil, nil
}

// pinned is c with the jobs it registers pinned to its node: in its
// datacenter, constrained to its ID.
func (c *cluster) pinned() *cluster {
	p := *c
	p.pin = true
	return &p
}

// nodeEventAt returns the index of n's latest event with message msg.
func (c *cluster) nodeEventAt(t *testing.T, n *api.Node, msg string) uint64 {
	t.Helper()
	var at uint64
	for _, e := range n.Events {
		if e.Message == msg && e.Subsystem == "Cluster" {
			at = e.CreateIndex
		}
	}
	if at == 0 || at != n.ModifyIndex {
		t.Fatalf("%s: node at index %d: no %q event at it: %+v", c.name, n.ModifyIndex, msg, n.Events)
	}
	return at
}

// nodeUpdateEvals returns the node-update evaluations of the check's
// node at node index nodeIndex and the index of the last of them.
func (c *cluster) nodeUpdateEvals(t *testing.T, nodeIndex uint64) (ids []string, created uint64) {
	t.Helper()
	evals, _, err := c.client.Evaluations().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evals {
		if ev.TriggeredBy == "node-update" && ev.NodeID == c.node.ID && ev.NodeModifyIndex == nodeIndex {
			ids = append(ids, ev.ID)
			created = max(created, ev.CreateIndex)
		}
	}
	t.Logf("%s: at node index %d: %d node-update evaluations, the last created at %d", c.name, nodeIndex, len(ids), created)
	if created <= nodeIndex {
		t.Errorf("%s: the node-update evaluations at node index %d were created at %d; want above it", c.name, nodeIndex, created)
	}
	return ids, created
}

// TestFidelityNodeRegisteredAgain: a purged node whose client still runs
// registers again (Node.Register of a node the servers do not know,
// coming ready: nodeStatusTransitionRequiresEval from initializing, then
// Node.createNodeEvals) and its jobs are evaluated: a node-update
// evaluation naming the node at its registration's index (its create and
// modify index) for each job with an allocation on it not done (the
// purge stopped its allocations as lost: done) and each system job that
// may run there, all created at one index, above the registration's. A
// real dev agent's client registered again 1.5 to 20 s after the purge.
// The simulator created the system jobs' evaluations each at its own
// index, and evaluated no other job.
func TestFidelityNodeRegisteredAgain(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		c.giveBackAtEnd(t)
		svc, bat, sys := nodeEvalJobs(t, c, "rereg")
		sys2 := c.jobID("reregsystem2")
		c.register(t, systemJob(sys2))
		c.waitAllocs(t, sys2, "running", func(as []*api.AllocationListStub) bool { return count(as, running) == 1 })
		ours := []string{svc, bat, sys, sys2}
		before, _, err := c.client.Nodes().Info(c.node.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		purged, _, err := c.client.Nodes().Purge(c.node.ID, nil)
		if err != nil {
			t.Fatalf("%s: purge: %v", c.name, err)
		}
		checkNodeEvals(t, c, "purge", purged.EvalIDs, purged.EvalCreateIndex, purged.NodeModifyIndex, ours, svc, bat, sys, sys2)
		deadline := time.Now().Add(waitLimit)
		n := registeredAgain(t, c, c.node.ID, deadline)
		t.Logf("%s: registered again: create index %d, modify index %d (purged at %d, created at %d before), %s, %s",
			c.name, n.CreateIndex, n.ModifyIndex, purged.NodeModifyIndex, before.CreateIndex, n.Status, n.SchedulingEligibility)
		if n.CreateIndex <= purged.EvalCreateIndex || n.ModifyIndex != n.CreateIndex || n.Status != api.NodeStatusReady {
			t.Errorf("%s: registered again with create index %d, modify index %d, %s; want one above the purge's evaluations' %d, both the same, ready",
				c.name, n.CreateIndex, n.ModifyIndex, n.Status, purged.EvalCreateIndex)
		}
		// The evaluations of the registration are made with it.
		var evals []*api.Evaluation
		for time.Now().Before(deadline) {
			all, _, err := c.client.Evaluations().List(nil)
			if err != nil {
				t.Fatal(err)
			}
			evals = evals[:0]
			for _, ev := range all {
				if ev.CreateIndex > purged.EvalCreateIndex && ev.TriggeredBy == "node-update" && ev.NodeID == c.node.ID {
					evals = append(evals, ev)
				}
			}
			if len(evals) > 0 {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("%s: evaluations of the node since the purge: %s", c.name, describeEvals(evals))
		var ids []string
		var created uint64
		for _, ev := range evals {
			ids = append(ids, ev.ID)
			created = ev.CreateIndex
		}
		if created <= n.CreateIndex {
			t.Errorf("%s: the registration's evaluations created at %d; want above its index %d", c.name, created, n.CreateIndex)
		}
		checkNodeEvals(t, c, "registered again", ids, created, n.CreateIndex, ours, sys, sys2)
	})
}
