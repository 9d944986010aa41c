package sim_test

import (
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TestFidelityEligibleNodeEvaluations: a node that turns eligible, by an
// eligibility call or by a drain's cancel that marks it eligible, gets
// one node-update evaluation per job Nomad's server evaluates for it
// (Node.createNodeEvals): each job with an allocation on the node that
// is not done (a service allocation counts until both the server and the
// client have stopped it, a batch one until its client has), and each
// system job that may run there. Its answer names them (EvalIDs, and the
// index they were created at); every other eligibility or drain call
// answers with none: taking a node out, a no-op, a cancel that leaves it
// out, setting a drain. The simulator answered every one of them with
// none. The evaluations are created together, at one index. An
// eligibility call's answer carries the index it wrote at (none for a
// no-op) and no NodeModifyIndex; a drain call's both. The drainer's own
// evaluations (node-drain, one per job whose allocations it drains,
// system jobs included) name no node.
func TestFidelityEligibleNodeEvaluations(t *testing.T) {
	forEachNomad(t, func(t *testing.T, c *cluster) {
		nodes := c.client.Nodes()
		id := c.node.ID
		c.giveBackAtEnd(t)
		svc, bat, sys := nodeEvalJobs(t, c, "eval")

		// check reads the evaluations an answer names (checkNodeEvals),
		// and an EvalCreateIndex only with some.
		check := func(what string, evalIDs []string, created, nodeIndex uint64, want ...string) {
			t.Helper()
			checkNodeEvals(t, c, what, evalIDs, created, nodeIndex, []string{svc, bat, sys}, want...)
			if (created != 0) != (len(evalIDs) > 0) {
				t.Errorf("%s: %s: EvalCreateIndex %d with %d evaluations", c.name, what, created, len(evalIDs))
			}
		}
		// An eligibility call answers with the index it wrote at (none
		// for a no-op) and no NodeModifyIndex.
		elig := func(what string, on, changes bool, want ...string) {
			t.Helper()
			r, err := nodes.ToggleEligibility(id, on, nil)
			if err != nil {
				t.Fatalf("%s: %s: %v", c.name, what, err)
			}
			if r.NodeModifyIndex != 0 || (r.LastIndex != 0) != changes {
				t.Errorf("%s: %s: NodeModifyIndex %d, index %d; want 0 and an index only for a change", c.name, what, r.NodeModifyIndex, r.LastIndex)
			}
			check(what, r.EvalIDs, r.EvalCreateIndex, r.LastIndex, want...)
		}
		elig("take out", false, true)
		elig("take out again", false, false)
		elig("give back", true, true, svc, bat, sys)
		elig("give back again", true, false)

		// A stopped service allocation its client has stopped is done.
		if _, _, err := c.client.Jobs().Deregister(svc, false, nil); err != nil {
			t.Fatal(err)
		}
		c.waitAllocs(t, svc, "stopped by its client", func(as []*api.AllocationListStub) bool {
			return len(as) == 1 && as[0].ClientStatus != api.AllocClientStatusRunning && as[0].ClientStatus != api.AllocClientStatusPending
		})
		// The batch allocation keeps a drain running (1h deadline).
		// A drain's answer names no evaluation: the drainer makes its
		// own after it (below).
		drain := func(what string) uint64 {
			t.Helper()
			r, err := nodes.UpdateDrain(id, &api.DrainSpec{Deadline: time.Hour}, false, nil)
			if err != nil {
				t.Fatalf("%s: %s: %v", c.name, what, err)
			}
			if len(r.EvalIDs) != 0 || r.EvalCreateIndex != 0 || r.NodeModifyIndex == 0 || r.NodeModifyIndex != r.LastIndex {
				t.Errorf("%s: %s: evaluations %v at %d, NodeModifyIndex %d, index %d; want none, and both the node's new modify index",
					c.name, what, r.EvalIDs, r.EvalCreateIndex, r.NodeModifyIndex, r.LastIndex)
			}
			return r.NodeModifyIndex
		}
		cancel := func(what string, markEligible bool, want ...string) {
			t.Helper()
			r, err := nodes.UpdateDrain(id, nil, markEligible, nil)
			if err != nil {
				t.Fatalf("%s: %s: %v", c.name, what, err)
			}
			if r.NodeModifyIndex == 0 || r.NodeModifyIndex != r.LastIndex {
				t.Errorf("%s: %s: NodeModifyIndex %d, index %d; want both the node's new modify index", c.name, what, r.NodeModifyIndex, r.LastIndex)
			}
			check(what, r.EvalIDs, r.EvalCreateIndex, r.NodeModifyIndex, want...)
		}
		drain("drain")
		cancel("cancel a drain, leaving the node out", false)
		drain("drain again")
		cancel("cancel a drain, marking the node eligible", true, bat, sys)
		cancel("cancel no drain, marking an eligible node eligible", true)

		// With the batch allocation done, a drain finds only the system
		// one: the drainer drains it with one node-drain evaluation of
		// its job, naming no node, and the drain completes.
		if _, _, err := c.client.Jobs().Deregister(bat, false, nil); err != nil {
			t.Fatal(err)
		}
		c.waitAllocs(t, bat, "stopped by its client", func(as []*api.AllocationListStub) bool {
			return count(as, func(a *api.AllocationListStub) bool {
				return a.ClientStatus == api.AllocClientStatusRunning || a.ClientStatus == api.AllocClientStatusPending
			}) == 0
		})
		at := drain("drain with only a system allocation")
		c.waitNode(t, "drained", func(n *api.Node) bool { return n.DrainStrategy == nil })
		evals, _, err := c.client.Jobs().Evaluations(sys, nil)
		if err != nil {
			t.Fatal(err)
		}
		var drained []*api.Evaluation
		for _, ev := range evals {
			if ev.CreateIndex > at && ev.TriggeredBy == "node-drain" {
				drained = append(drained, ev)
			}
		}
		if len(drained) != 1 || drained[0].NodeID != "" || drained[0].NodeModifyIndex != 0 {
			t.Errorf("%s: the system job's evaluations by the drain: %s; want one node-drain naming no node", c.name, describeEvals(drained))
		}
	})
}
