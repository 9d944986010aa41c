package migrate

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/sim"
)

// registerEdge registers "edge": one allocation on a-1 (dc1 preferred,
// dc2 allowed) whose group waits an hour for a disconnected node
// (disconnect.lost_after) and reschedules after 30 s, and returns its
// allocation once it runs and its deployment has succeeded.
func (h *harness) registerEdge() *nomadapi.AllocationListStub {
	h.t.Helper()
	return h.registerEdgeOf(1, nil)[0]
}

// registerEdgeOf registers edge with count allocations, its group changed
// by tweak when given, and returns them once all run on a-1 and the
// deployment has succeeded.
func (h *harness) registerEdgeOf(count int, tweak func(*nomadapi.TaskGroup)) []*nomadapi.AllocationListStub {
	h.t.Helper()
	j := nomadapi.NewServiceJob("edge", "edge", "global", 50)
	j.Datacenters = []string{"dc1", "dc2"}
	j.AddAffinity(nomadapi.NewAffinity("${node.datacenter}", "=", "dc1", 100))
	tg := nomadapi.NewTaskGroup("edge", count)
	tg.AddTask(nomadapi.NewTask("edge", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"infinity"}).
		Require(&nomadapi.Resources{CPU: new(200), MemoryMB: new(128)}))
	tg.Disconnect = &nomadapi.DisconnectStrategy{LostAfter: new(time.Hour)}
	tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Delay: new(30 * time.Second), DelayFunction: new("constant"), Unlimited: new(true)}
	if tweak != nil {
		tweak(tg)
	}
	j.AddTaskGroup(tg)
	j.Update = &nomadapi.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(10 * time.Second)}
	if _, _, err := h.client.Jobs().Register(j, nil); err != nil {
		h.t.Fatal(err)
	}
	node := h.nodeID("a-")
	for range 20 {
		h.step(10 * time.Second)
		d, _, err := h.client.Jobs().LatestDeployment("edge", nil)
		if err != nil {
			h.t.Fatal(err)
		}
		as := h.allocs("edge")
		on := 0
		for _, a := range as {
			if a.ClientStatus == nomadapi.AllocClientStatusRunning && a.NodeID == node {
				on++
			}
		}
		if on == count && len(as) == count && d != nil && d.Status == nomadapi.DeploymentStatusSuccessful {
			return as
		}
	}
	h.t.Fatal("edge never ran on a-1 and deployed")
	return nil
}

// disconnectNode takes node's client away and checks that, its
// allocations' group setting disconnect.lost_after, the node is
// disconnected 10 s on.
func (h *harness) disconnectNode(node string) {
	h.t.Helper()
	h.setNodeDown(node, true)
	h.step(10 * time.Second)
	if n, _, err := h.client.Nodes().Info(node, nil); err != nil || n.Status != nomadapi.NodeStatusDisconnected {
		h.t.Fatalf("node %s after its heartbeat stopped: %v; want disconnected", node, err)
	}
}

// setNodeDown takes node's client away (down: true) or brings it back.
func (h *harness) setNodeDown(node string, down bool) {
	h.t.Helper()
	f := sim.Faults{}
	if down {
		f.NodesDown = []string{node}
	}
	if err := h.sim.SetFaults(f); err != nil {
		h.t.Fatal(err)
	}
}

// TestMoveOffADisconnectedNode: a request queued to move edge's
// allocation starts after its node a-1 stopped heartbeating; its group's disconnect.lost_after (an
// hour) keeps the allocation unknown rather than lost, a-1 disconnected
// (TestFidelityNodeDisconnected). Whether the request stops it before
// Nomad replaces it (a stop only marks it to migrate; Nomad places the
// replacement at the reschedule delay) or after (Nomad's own replacement,
// which Nomad undoes when the node comes back unless the original was
// stopped), the move ends done in dc2 once the replacement runs, well
// before lost_after (before: it waited for the unknown allocation to
// stop, an hour, as waiting on a stop is no stall; and an allocation
// Nomad had replaced was never stopped, so the move was undone when a-1
// came back). When a-1 comes back, the original stops and the replacement
// runs on. The allocation is stopped once. A new request for an unknown
// allocation is refused, saying its node is disconnected (before: "not
// running (Nomad is stopping or has stopped it)").
func TestMoveOffADisconnectedNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait time.Duration // between the disconnect and the request
	}{{"stopped before Nomad replaces it", 0}, {"replaced by Nomad first", 2 * time.Minute}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, actPolicies)
			a := h.registerEdge()
			node := h.nodeID("a-")
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
			if err != nil {
				t.Fatal(err)
			}
			h.disconnectNode(node)
			h.step(tc.wait)
			got, _, err := h.client.Allocations().Info(a.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.ClientStatus != nomadapi.AllocClientStatusUnknown || (tc.wait > 0) != (got.NextAllocation != "") {
				t.Fatalf("edge's allocation before the request: %s, next %q", got.ClientStatus, got.NextAllocation)
			}
			// A new request for it is refused, saying why.
			if _, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"}); err == nil || !strings.Contains(err.Error(), "its node is disconnected") {
				t.Errorf("a request for the unknown allocation: %v; want refused, saying its node is disconnected", err)
			}
			start := h.now()
			h.passUntil(start.Add(20*time.Minute), func() {})
			r := h.request(id)
			if r.State != state.RequestDone || len(r.Moves) != 1 || r.Moves[0].Landed != "dc2" || r.Moves[0].Error != "" {
				t.Fatalf("request %s after 20 minutes: %q, moves %+v; want done, landed in dc2", r.State, r.Reason, r.Moves)
			}
			if n := countStops(h, a.ID); n != 1 {
				t.Errorf("edge's allocation stopped %d times; want once", n)
			}
			h.setNodeDown(node, false)
			h.step(30 * time.Second)
			got, _, err = h.client.Allocations().Info(a.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			repl, _, err := h.client.Allocations().Info(r.Moves[0].Replacement, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.DesiredStatus != nomadapi.AllocDesiredStatusStop || got.ClientStatus != nomadapi.AllocClientStatusComplete ||
				repl.DesiredStatus != nomadapi.AllocDesiredStatusRun || repl.ClientStatus != nomadapi.AllocClientStatusRunning {
				t.Errorf("a-1 back: the original %s / %s, the replacement %s / %s; want the original stopped and the replacement running on",
					got.DesiredStatus, got.ClientStatus, repl.DesiredStatus, repl.ClientStatus)
			}
		})
	}
}

// TestAlreadyMoving: what counts as an allocation Nomad already stops,
// migrates or has replaced (never stopped twice), and what does not: one
// replaced while its node was disconnected, and one that came back so.
func TestAlreadyMoving(t *testing.T) {
	const run, stop = nomadapi.AllocDesiredStatusRun, nomadapi.AllocDesiredStatusStop
	for _, tc := range []struct {
		name                  string
		desired, client, next string
		migrate, want         bool
	}{
		{"running", run, "running", "", false, false},
		{"stopping", stop, "running", "", false, true},
		{"marked to migrate", run, "running", "", true, true},
		{"failed and rescheduled", run, "failed", "r", false, true},
		{"lost and replaced", stop, "lost", "r", false, true},
		{"unknown", run, "unknown", "", false, false},
		{"unknown, replaced by Nomad", run, "unknown", "r", false, false},
		{"unknown, stopped", run, "unknown", "r", true, true},
		{"back after a disconnect", run, "running", "r", false, false},
	} {
		if got := alreadyMoving(tc.desired, tc.client, tc.next, tc.migrate); got != tc.want {
			t.Errorf("%s: %v; want %v", tc.name, got, tc.want)
		}
	}
}
