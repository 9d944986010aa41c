package migrate

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestRestartKeepsOutANodeGivenBackBeforeAPurge: a whole-node request of
// a-1 held it while the queue was paused; dc1's maintenance window
// (06:30–07:30) queued its requests at 06:10, taking nothing out in the
// paused queue. At 06:25 the operator gives the request up and a-1 goes
// back to scheduling (nothing holds it: the window's requests wait in the
// paused queue, and its time has not begun); at the resume the window
// takes a-1 out. Purged at 06:30, a-1 is registered again by its client
// out of scheduling, as it last heard: the give-back again of the
// request's give-back (giveBackAgainAll, within ten minutes of it) waits,
// the window holding a-1 (heldByAny). A new leader at 06:33, whose
// follower runs before its first plan, read the window's end without
// policies (windowEnd: at its start) and gave a-1 back mid-window, where
// nothing took it out again until 07:30; now nothing is given back again
// before the term's first plan, as held gives nothing back (bdf9935).
func TestRestartKeepsOutANodeGivenBackBeforeAPurge(t *testing.T) {
	h := newHarness(t, actScenario+"\nreregister = \"2m\"\n", windowPolicies(""))
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	h.holdThenPause()
	h.passUntil(time.Date(2026, 1, 5, 6, 24, 0, 0, time.UTC), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s at 06:24 while %s waits queued: not held", got, id)
	}
	mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: "test: the operator gives it up"})
	h.passUntil(h.now(), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Fatalf("a-1 %s at %s after %s was given up; the test needs it given back before the window", got, h.now().Format("15:04"), id)
	}
	w := h.windowRequest(func(state.MigrationRequest) bool { return true })
	end := h.windowEnd(w)
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	h.passUntil(time.Date(2026, 1, 5, 6, 30, 0, 0, time.UTC), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s at 06:30: the test needs the window to take it out after the resume", got)
	}
	h.purgeNode(node)
	h.registeredAgain(node, "a-1")
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 registered again %s; the test needs it out, as its client last heard", got)
	}
	h.passUntil(time.Date(2026, 1, 5, 6, 32, 0, 0, time.UTC), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s at 06:32 under the old leader: the test needs the window to hold it; decisions %q", got, h.decisionsSaying("", "a-1"))
	}
	h.restartFollows(node, end)
}
