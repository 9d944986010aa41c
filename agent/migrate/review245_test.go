package migrate

import (
	"slices"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestGiveBackOfAJoinedNodeWaitsForAWindowForeshapeCancelled: dc1's
// maintenance window (06:30–07:30) queues its requests at 06:10 and takes
// a-1 out; web is stopped at 06:14 and foreshape cancels both requests,
// their work gone. The window still holds a-1 to 07:30 and takes out a
// node that joins dc1 (holdJoined, stillHolds). a-2 joins in the lead
// time and a whole-node request of it takes it out first; an operator
// cancels that request. Its give-back waited for a window whose requests
// are queued or ran, but read none that was cancelled, and the policies'
// window (windowHold) is under way only from 06:30: a-2 went back to
// scheduling at once and out again for the window at the next pass. Now
// the give-back waits for the window's end as it does for a window whose
// requests were not cancelled: a-2 stays out to 07:30, given back once.
func TestGiveBackOfAJoinedNodeWaitsForAWindowForeshapeCancelled(t *testing.T) {
	h := newHarness(t, actScenario, cappedWindowPolicies())
	a1 := h.nodeID("a-1")
	h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
	if _, _, err := h.client.Jobs().Deregister("web", false, nil); err != nil {
		t.Fatal(err)
	}
	h.passUntil(time.Date(2026, 1, 5, 6, 25, 0, 0, time.UTC), nil)
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && (x.State != state.RequestCancelled || x.Reason == OperatorCancel) {
			t.Fatalf("%s %s (%s) at %s; the test needs every request of the window cancelled by foreshape", x.ID, x.State, x.Reason, h.now().Format("15:04"))
		}
	}
	if got := h.eligibility(a1); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s at %s; the test needs the window to hold it", got, h.now().Format("15:04"))
	}
	ids, err := h.sim.AddNodes("a", 1)
	if err != nil || len(ids) != 1 {
		t.Fatalf("add a node to dc1: %v %v", ids, err)
	}
	a2 := ids[0]
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
	from := h.now().Format("15:04")
	spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), a1, a2)
	if want := []string{from + "–07:30"}; !slices.Equal(spans[a2], want) {
		t.Errorf("a-2 out of scheduling %q; want %q, its give-back held for the window; decisions %q", spans[a2], want, h.decisionsSaying("", "a-2"))
	}
	if got := h.decisionsSaying("", "node a-2 eligible again"); len(got) != 1 {
		t.Errorf("give-backs of a-2 %q; want one", got)
	}
	if want := []string{from + "–07:30"}; !slices.Equal(spans[a1], want) {
		t.Errorf("a-1 out of scheduling %q; want %q", spans[a1], want)
	}
}
