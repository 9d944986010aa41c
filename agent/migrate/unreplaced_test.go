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
	h.setNodeDown(node, true)
	h.step(10 * time.Second)
	if n, _, err := h.client.Nodes().Info(node, nil); err != nil || n.Status != nomadapi.NodeStatusDisconnected {
		t.Fatalf("a-1 after its heartbeat stopped: %v; want disconnected", err)
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
	h.setNodeDown(node, true)
	h.step(10 * time.Second)
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
