package migrate

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestDrainADisconnectedNode: a drain-strategy request of a-1, whose
// client stops heartbeating before the request starts or while its drain
// runs. edge's two allocations there wait an hour for the node (their
// group's disconnect.lost_after) and are unknown; Nomad replaces them in
// dc2 at their reschedule delay, yet its drain of a-1 cannot complete
// while they are unknown: only when the node comes back, at lost_after or
// at the drain's deadline (an hour: TestFidelityDrainDisconnectedNode,
// TestFidelityNodeDisconnectsMidDrain). The request ends done once every
// replacement runs, saying the drain goes on, and drains once; the node
// stays out of scheduling, draining (before: the request waited for the
// drain, was retried at its settle timeout, draining the node again, and
// failed after three attempts, 35 minutes on, when foreshape ended its
// drain and made the disconnected node eligible). When a-1 comes back,
// the originals stop, Nomad's drain completes and the node stays
// ineligible, as after any drain-strategy request.
func TestDrainADisconnectedNode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before bool // the node disconnects before the request starts
	}{{"disconnected before", true}, {"disconnects mid-drain", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, drainStrategy(actPolicies))
			node := h.nodeID("a-")
			edge := h.registerSlowEdge()
			if tc.before {
				h.setNodeDown(node, true)
				h.step(10 * time.Second)
			}
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.before {
				// Disconnected once the drain has moved one of edge's
				// allocations and holds the other back.
				for range 20 {
					h.quarterPass()
					if n, _, err := h.client.Nodes().Info(node, nil); err == nil && n.DrainStrategy != nil && movedOff(h, edge) == 1 {
						break
					}
				}
				if movedOff(h, edge) != 1 {
					t.Fatalf("the drain did not hold one of edge's allocations back: %d moved", movedOff(h, edge))
				}
				h.setNodeDown(node, true)
				h.step(10 * time.Second)
			}
			if n, _, err := h.client.Nodes().Info(node, nil); err != nil || n.Status != nomadapi.NodeStatusDisconnected {
				t.Fatalf("a-1 after its heartbeat stopped: %v; want disconnected", err)
			}
			h.passUntil(h.now().Add(40*time.Minute), nil)
			r := h.request(id)
			if r.State != state.RequestDone || r.Attempts != 0 || !strings.Contains(r.Reason, "drain of node a-1 goes on while the node is disconnected") {
				t.Fatalf("request %s after 40 minutes: %q (attempts %d); want done, saying Nomad's drain goes on", r.State, r.Reason, r.Attempts)
			}
			for _, m := range r.Moves {
				if m.Landed != "dc2" || m.Error != "" {
					t.Errorf("move %+v; want landed in dc2", m)
				}
			}
			drains := 0
			for _, c := range h.mutating() {
				if strings.HasSuffix(c, "/drain") {
					drains++
				}
			}
			if drains != 1 {
				t.Errorf("%d drain calls; want 1 (calls %v)", drains, h.mutating())
			}
			n, _, err := h.client.Nodes().Info(node, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n.DrainStrategy == nil || n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
				t.Errorf("a-1 once the request is done: %s, drain %+v; want ineligible, Nomad's drain on", n.SchedulingEligibility, n.DrainStrategy)
			}

			h.setNodeDown(node, false)
			h.passUntil(h.now().Add(2*time.Minute), nil)
			for _, a := range edge {
				got, _, err := h.client.Allocations().Info(a.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got.DesiredStatus != nomadapi.AllocDesiredStatusStop || got.ClientStatus != nomadapi.AllocClientStatusComplete {
					t.Errorf("edge's original %s once a-1 is back: %s / %s; want stopped", a.ID[:8], got.DesiredStatus, got.ClientStatus)
				}
			}
			if n, _, err = h.client.Nodes().Info(node, nil); err != nil || n.DrainStrategy != nil || n.SchedulingEligibility != nomadapi.NodeSchedulingIneligible ||
				n.LastDrain == nil || n.LastDrain.Status != nomadapi.DrainStatusComplete {
				t.Errorf("a-1 back: %v %s, drain %+v, last %+v; want ineligible, its drain complete", err, n.SchedulingEligibility, n.DrainStrategy, n.LastDrain)
			}
			if got := h.request(id); got.State != state.RequestDone || got.Attempts != 0 {
				t.Errorf("request %s once a-1 is back: %q", got.State, got.Reason)
			}
		})
	}
}

// movedOff counts the allocations of as replaced and stopped.
func movedOff(h *harness, as []*nomadapi.AllocationListStub) int {
	h.t.Helper()
	k := 0
	for _, a := range as {
		got, _, err := h.client.Allocations().Info(a.ID, nil)
		if err != nil {
			h.t.Fatal(err)
		}
		if got.DesiredStatus == nomadapi.AllocDesiredStatusStop && got.NextAllocation != "" {
			k++
		}
	}
	return k
}

// registerSlowEdge registers "edge" as registerEdge does, with two
// allocations on a-1 whose group's migrate block moves one at a time and
// counts a replacement healthy after 5 minutes, so that a drain of a-1
// leaves the second there a while; it returns them once they run and the
// deployment succeeded.
func (h *harness) registerSlowEdge() []*nomadapi.AllocationListStub {
	h.t.Helper()
	return h.registerEdgeOf(2, func(tg *nomadapi.TaskGroup) {
		tg.Migrate = &nomadapi.MigrateStrategy{MaxParallel: new(1), MinHealthyTime: new(5 * time.Minute), HealthyDeadline: new(10 * time.Minute)}
	})
}

// TestDrainWindowOverADisconnectedNode: a drain window of a drain-strategy
// policy drains a-1, whose client stops heartbeating while the drain holds
// one of edge's allocations back (TestDrainADisconnectedNode; a window
// drains no node that is not ready when it starts: "no matching node is
// ready"). The window's request ends done once Nomad's replacements run
// in dc2, its drain still on (before: retried at the settle timeout, the
// node drained again), and the window's end gives the node back as after
// any drain window (the node down by then, edge's lost_after passed):
// foreshape's drain has ended and the node is eligible.
func TestDrainWindowOverADisconnectedNode(t *testing.T) {
	h := newHarness(t, actScenario, drainStrategy(windowPolicies("")))
	node := h.nodeID("a-")
	edge := h.registerSlowEdge()
	r := h.windowRequest(func(x state.MigrationRequest) bool { return x.Resource.ID == node })
	end := h.windowEnd(r)
	var doneAt time.Time
	down := false
	h.passUntil(end.Add(2*time.Minute), func() {
		if !down && movedOff(h, edge) == 1 {
			h.setNodeDown(node, true)
			down = true
		}
		if doneAt.IsZero() && h.request(r.ID).State == state.RequestDone {
			doneAt = h.now()
		}
	})
	r = h.request(r.ID)
	if !down {
		t.Fatalf("the window's drain never held one of edge's allocations back; request %s: %q", r.State, r.Reason)
	}
	if r.State != state.RequestDone || r.Attempts != 0 || doneAt.After(end) {
		t.Fatalf("the window's request %s (attempts %d, done at %s, the window ends at %s): %q; want done within the window", r.State, r.Attempts, doneAt, end, r.Reason)
	}
	n, _, err := h.client.Nodes().Info(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.DrainStrategy != nil || n.SchedulingEligibility != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 (%s) after the window: %s, drain %+v; want eligible, no drain", n.Status, n.SchedulingEligibility, n.DrainStrategy)
	}
}
