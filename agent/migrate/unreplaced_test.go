package migrate

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// keepOnDisconnect is registerEdgeOf's tweak for a group that sets
// disconnect.replace = false: Nomad places no replacement of its
// allocations while their node is disconnected
// (TestFidelityNodeDisconnectedUnreplaced).
func keepOnDisconnect(tg *nomadapi.TaskGroup) { tg.Disconnect.Replace = new(false) }

// TestMoveOfAnAllocationNomadKeepsWhileDisconnected: edge's group sets
// disconnect.replace = false and its node a-1 stops heartbeating before
// the request to move its allocation starts. The request stops it (which
// marks it to migrate) and ends at once, cancelled, saying Nomad places
// no replacement until the node is back or lost_after has passed; its
// reservation is released (before: it waited for a replacement, was
// retried at each 10-minute settle timeout and failed after three
// attempts, 33 minutes on). When a-1 comes back Nomad moves the
// allocation it was marked to migrate, as the reason says.
func TestMoveOfAnAllocationNomadKeepsWhileDisconnected(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	a := h.registerEdgeOf(1, keepOnDisconnect)[0]
	node := h.nodeID("a-")
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.disconnectNode(node)
	// A new request for it is refused, saying why Nomad does not
	// replace it (before: that Nomad replaces it after its delay).
	if _, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"}); err == nil || !strings.Contains(err.Error(), "sets disconnect.replace = false") {
		t.Errorf("a request for the unknown allocation: %v; want refused, saying its group sets disconnect.replace = false", err)
	}
	h.passUntil(h.now().Add(3*time.Minute), nil)
	r := h.request(id)
	if r.State != state.RequestCancelled || r.Attempts != 0 || !strings.Contains(r.Reason, "sets disconnect.replace = false") ||
		!strings.Contains(r.Reason, "until the node is back") {
		t.Fatalf("request %s 3 minutes on: %q (attempts %d); want cancelled, saying Nomad places no replacement while a-1 is disconnected",
			r.State, r.Reason, r.Attempts)
	}
	if n := countStops(h, a.ID); n != 1 {
		t.Errorf("edge's allocation stopped %d times; want once", n)
	}
	if res, ok := h.c.cfg.State.ReservationFor(id); ok {
		t.Errorf("reservation %s still held for the cancelled request", res.ID)
	}

	h.setNodeDown(node, false)
	h.passUntil(h.now().Add(2*time.Minute), nil)
	got, _, err := h.client.Allocations().Info(a.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.DesiredStatus != nomadapi.AllocDesiredStatusStop || got.NextAllocation == "" {
		t.Fatalf("edge's allocation once a-1 is back: %s / %s, next %q; want moved by Nomad", got.DesiredStatus, got.ClientStatus, got.NextAllocation)
	}
	if repl, _, err := h.client.Allocations().Info(got.NextAllocation, nil); err != nil || repl.ClientStatus != nomadapi.AllocClientStatusRunning {
		t.Errorf("its replacement: %v; want running", err)
	}
}

// TestDrainADisconnectedNodeNomadKeeps: a drain-strategy request of a-1,
// disconnected, whose allocations' group sets disconnect.replace = false:
// Nomad replaces none while the node is disconnected, so the request ends
// done at once, each move not moved and why, and saying Nomad's drain
// goes on (before: retried at its settle timeouts, draining again, and
// failed 35 minutes on, giving the node back).
func TestDrainADisconnectedNodeNomadKeeps(t *testing.T) {
	h := newHarness(t, actScenario, drainStrategy(actPolicies))
	node := h.nodeID("a-")
	h.registerEdgeOf(2, keepOnDisconnect)
	h.disconnectNode(node)
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(5*time.Minute), nil)
	r := h.request(id)
	if r.State != state.RequestDone || r.Attempts != 0 || !strings.Contains(r.Reason, "2 allocations not moved") ||
		!strings.Contains(r.Reason, "sets disconnect.replace = false") || !strings.Contains(r.Reason, "drain of node a-1 goes on while the node is disconnected") {
		t.Fatalf("request %s 5 minutes on: %q (attempts %d); want done, its moves not moved and why, saying Nomad's drain goes on", r.State, r.Reason, r.Attempts)
	}
	if n, _, err := h.client.Nodes().Info(node, nil); err != nil || n.DrainStrategy == nil || n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 once the request is done: %v; want ineligible, Nomad's drain on", err)
	}
}

// TestMoveOfAnAllocationOfARunningDeploymentWhileDisconnected: edge's
// allocation on a-1 is of its job's deployment, still running (the
// allocation not healthy yet: min_healthy_time 10 minutes), when a-1
// stops heartbeating; Nomad schedules no reschedule of it (its follow-up
// is the max-disconnect-timeout: TestFidelityNodeDisconnectedMidDeployment)
// and places no replacement while a-1 is disconnected. The request to
// move it ends at once, cancelled, saying so (before: it waited for a
// replacement through three settle timeouts and failed 33 minutes on).
func TestMoveOfAnAllocationOfARunningDeploymentWhileDisconnected(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	j := nomadapi.NewServiceJob("edge", "edge", "global", 50)
	j.Datacenters = []string{"dc1", "dc2"}
	j.AddAffinity(nomadapi.NewAffinity("${node.datacenter}", "=", "dc1", 100))
	tg := nomadapi.NewTaskGroup("edge", 1)
	tg.AddTask(nomadapi.NewTask("edge", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"infinity"}).
		Require(&nomadapi.Resources{CPU: new(200), MemoryMB: new(128)}))
	tg.Disconnect = &nomadapi.DisconnectStrategy{LostAfter: new(time.Hour)}
	tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Delay: new(30 * time.Second), DelayFunction: new("constant"), Unlimited: new(true)}
	j.AddTaskGroup(tg)
	j.Update = &nomadapi.UpdateStrategy{MaxParallel: new(1), MinHealthyTime: new(10 * time.Minute),
		HealthyDeadline: new(15 * time.Minute), ProgressDeadline: new(20 * time.Minute)}
	if _, _, err := h.client.Jobs().Register(j, nil); err != nil {
		t.Fatal(err)
	}
	node := h.nodeID("a-")
	var a *nomadapi.AllocationListStub
	for range 10 {
		h.step(10 * time.Second)
		if as := h.allocs("edge"); len(as) == 1 && as[0].ClientStatus == nomadapi.AllocClientStatusRunning && as[0].NodeID == node {
			a = as[0]
			break
		}
	}
	if a == nil {
		t.Fatal("edge never ran on a-1")
	}
	if d, _, err := h.client.Jobs().LatestDeployment("edge", nil); err != nil || d == nil || d.Status != nomadapi.DeploymentStatusRunning {
		t.Fatalf("edge's deployment: %v; want running", err)
	}
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.disconnectNode(node)
	h.passUntil(h.now().Add(3*time.Minute), nil)
	r := h.request(id)
	if r.State != state.RequestCancelled || r.Attempts != 0 || !strings.Contains(r.Reason, "Nomad scheduled no reschedule of edge.edge[0]") {
		t.Fatalf("request %s 3 minutes on: %q (attempts %d); want cancelled, saying Nomad scheduled no reschedule of it", r.State, r.Reason, r.Attempts)
	}
	if n := countStops(h, a.ID); n != 1 {
		t.Errorf("edge's allocation stopped %d times; want once", n)
	}
}

// TestReplacementOfALostAllocationNomadDidNotLink: where a group sets
// disconnect.stop_on_client_after, a real Nomad 2.0.6-dev replaced a lost
// allocation 45 s after its node went down (40 s plus the kill timeout,
// at a pending alloc-failure evaluation) with an allocation of the same
// name that names no previous allocation, and the lost one no next: a
// move of it never saw its replacement (it settled on NextAllocation
// alone) and failed after its retries. The replacement is now the newest
// allocation of the same job and name created after it and desired to
// run; a link, where Nomad makes one, still decides.
func TestReplacementOfALostAllocationNomadDidNotLink(t *testing.T) {
	stub := func(id, name, client, desired, next string, created uint64) *nomadapi.AllocationListStub {
		return &nomadapi.AllocationListStub{ID: id, Name: name, JobID: "edge", Namespace: "default", ClientStatus: client,
			DesiredStatus: desired, NextAllocation: next, CreateIndex: created}
	}
	const run, stop = nomadapi.AllocDesiredStatusRun, nomadapi.AllocDesiredStatusStop
	for _, tc := range []struct {
		name   string
		allocs []*nomadapi.AllocationListStub
		want   string
	}{
		{"linked", []*nomadapi.AllocationListStub{stub("o", "edge.edge[0]", "lost", stop, "r", 10), stub("r", "edge.edge[0]", "running", run, "", 20)}, "r"},
		{"unlinked", []*nomadapi.AllocationListStub{stub("o", "edge.edge[0]", "lost", stop, "", 10), stub("r", "edge.edge[0]", "running", run, "", 20)}, "r"},
		{"unlinked, not placed yet", []*nomadapi.AllocationListStub{stub("o", "edge.edge[0]", "lost", stop, "", 10), stub("x", "edge.edge[1]", "running", run, "", 20)}, ""},
		{"an older one of the name", []*nomadapi.AllocationListStub{stub("o", "edge.edge[0]", "lost", stop, "", 10), stub("p", "edge.edge[0]", "complete", stop, "o", 5)}, ""},
		{"stopped, not lost", []*nomadapi.AllocationListStub{stub("o", "edge.edge[0]", "complete", stop, "", 10), stub("r", "edge.edge[0]", "running", run, "", 20)}, ""},
	} {
		c := &Coordinator{view: &viewCache{allocs: map[string]*nomadapi.AllocationListStub{}}}
		for _, a := range tc.allocs {
			c.view.allocs[a.ID] = a
		}
		got := ""
		if r := c.replacementOf("o"); r != nil {
			got = r.ID
		}
		if got != tc.want {
			t.Errorf("%s: replacement %q; want %q", tc.name, got, tc.want)
		}
	}
}
