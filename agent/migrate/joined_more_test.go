package migrate

import (
	"slices"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestJoinedNodeOfAWindowForeshapeCancelledIsTakenOut: dc1's maintenance
// window (06:30–07:30) queues a request for each of web's two allocations
// at 06:10 and takes a-1 out; web is then stopped and foreshape cancels
// both requests, their work gone (by 06:26). No operator called the
// window off: a-1 stays out until 07:30. A node that joins dc1 at 06:27
// stayed in scheduling through the window: holdJoined read a window none
// of whose requests is left uncancelled as one that takes nothing out.
// Now it goes out at the pass that first sees it and back at 07:30, with
// a-1. A window an operator called off (every request cancelled by an
// operator) gives a-1 back at once and takes no node that joins it out.
func TestJoinedNodeOfAWindowForeshapeCancelledIsTakenOut(t *testing.T) {
	for _, tc := range []struct {
		name     string
		operator bool
	}{
		{"cancelled by foreshape", false},
		{"called off by an operator", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, cappedWindowPolicies())
			a1 := h.nodeID("a-1")
			h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
			var queued []string
			for _, x := range h.local.FSM.Act().Requests {
				if x.Origin == "schedule" && x.State.Queued() {
					queued = append(queued, x.ID)
				}
			}
			if len(queued) == 0 {
				t.Fatal("no window request queued by 06:14")
			}
			if tc.operator {
				for _, id := range queued {
					mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: OperatorCancel})
				}
			} else if _, _, err := h.client.Jobs().Deregister("web", false, nil); err != nil {
				t.Fatal(err)
			}
			h.passUntil(time.Date(2026, 1, 5, 6, 26, 0, 0, time.UTC), nil)
			for _, x := range h.local.FSM.Act().Requests {
				if x.Origin == "schedule" && x.State != state.RequestCancelled {
					t.Fatalf("%s %s at 06:26; the test needs every request of the window cancelled", x.ID, x.State)
				}
				if x.Origin == "schedule" && !tc.operator && x.Reason == OperatorCancel {
					t.Fatalf("%s cancelled as by an operator", x.ID)
				}
			}
			ids, err := h.sim.AddNodes("a", 1)
			if err != nil || len(ids) != 1 {
				t.Fatalf("add a node to dc1: %v %v", ids, err)
			}
			a2 := ids[0]
			spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), a1, a2)
			joined := h.decisionsSaying("", "joined the window's localities")
			if tc.operator {
				if len(spans[a1]) != 0 || len(spans[a2]) != 0 {
					t.Errorf("a-1 out %q, a-2 out %q after an operator called the window off; want neither", spans[a1], spans[a2])
				}
				if len(joined) != 0 {
					t.Errorf("decisions taking a joined node out %q; want none", joined)
				}
				return
			}
			if want := []string{"06:27–07:30"}; !slices.Equal(spans[a1], want) {
				t.Errorf("a-1 out of scheduling %q; want %q", spans[a1], want)
			}
			if want := []string{"06:27–07:30"}; !slices.Equal(spans[a2], want) {
				t.Errorf("a-2, joined at 06:27, out of scheduling %q; want %q; decisions %q", spans[a2], want, h.decisionsSaying("", "a-2"))
			}
			if len(joined) != 1 {
				t.Errorf("decisions taking a joined node out %q; want one", joined)
			}
		})
	}
}

// TestLeadTimeGiveBackOfAJoinedNodeWaitsForTheWindow: dc1's maintenance
// window (06:30–07:30) queues its requests at 06:10, taking a-1 out; its
// moves run 06:22–06:24. In its lead time a-2 joins dc1, and a whole-node
// request of it takes it out before the window does (the window leaves a
// node out already as it is); an operator cancels that request. Its
// give-back waits for a drain window whose requests list the node, queued
// (holdRequestHold) or run (heldByRequest), but the window's requests do
// not list a-2, and the window is not under way by the policies
// (windowHold) until 06:30: a-2 went back to scheduling at once and out
// again for the window at the next pass. Now the give-back waits for the
// window's end, as a listed node's does: a-2 stays out to 07:30 and is
// given back once.
func TestLeadTimeGiveBackOfAJoinedNodeWaitsForTheWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		join time.Time
	}{
		{"requests queued", time.Date(2026, 1, 5, 6, 11, 0, 0, time.UTC)},
		{"moves done", time.Date(2026, 1, 5, 6, 25, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, cappedWindowPolicies())
			a1 := h.nodeID("a-1")
			h.passUntil(tc.join, nil)
			if got := h.eligibility(a1); got != nomadapi.NodeSchedulingIneligible {
				t.Fatalf("a-1 %s at %s; the test needs it out for the window", got, h.now().Format("15:04"))
			}
			a2, from := h.joinHeldThenGivenBack(t)
			spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), a2)[a2]
			if want := []string{from + "–07:30"}; !slices.Equal(spans, want) {
				t.Errorf("a-2 out of scheduling %q; want %q, its give-back held for the window; decisions %q", spans, want, h.decisionsSaying("", "a-2"))
			}
			if got := h.decisionsSaying("", "node a-2 eligible again"); len(got) != 1 {
				t.Errorf("give-backs of a-2 %q; want one", got)
			}
		})
	}
}

// joinHeldThenGivenBack adds a node, a-2, to dc1 and has an operator's
// whole-node request take it out while the queue is paused, then cancels
// the request and resumes the queue: what follows is the request's
// give-back of a-2. It returns a-2's ID and the time of the cancel.
func (h *harness) joinHeldThenGivenBack(t *testing.T) (a2, from string) {
	t.Helper()
	ids, err := h.sim.AddNodes("a", 1)
	if err != nil || len(ids) != 1 {
		t.Fatalf("add a node to dc1: %v %v", ids, err)
	}
	a2 = ids[0]
	h.step(15 * time.Second)
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: a2, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	h.holdThenPause()
	if got := h.eligibility(a2); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-2 %s while %s waits queued: not held", got, id)
	}
	mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: OperatorCancel})
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	from = h.now().Format("15:04")
	return a2, from
}
