package migrate

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestPausedQueueHoldsNothingAgainAfterAPurge: the pause rule (a paused
// queue takes nothing out; a request waiting in it holds back no
// give-back) holds for a node purged and registered again too.
//   - held again: a whole-node request of a-1 waits in the paused queue,
//     its node held from before the pause; a-1 is purged and its client
//     registers it again, eligible. Before, the purge re-hold
//     (holdAgainAll) took it out again at the next pass, for a request
//     that waits in a paused queue; now it stays in scheduling until the
//     resume and goes out at the first pass after it.
//   - given back again: the request that held a-1 is cancelled as a-1 is
//     purged; a-1's client registers it again out of scheduling, as it
//     last heard, and a second request of a-1 waits in the paused queue.
//     Before, the second request held back the give-back of that
//     registration (giveBackAgainAll) for as long as the pause lasted;
//     now a-1 goes back at once, and out again for the second request
//     after the resume.
func TestPausedQueueHoldsNothingAgainAfterAPurge(t *testing.T) {
	t.Run("held again", func(t *testing.T) {
		h := newHarness(t, actScenario, actPolicies)
		node := h.nodeID("a-")
		mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
		id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
		if err != nil {
			t.Fatal(err)
		}
		h.run(h.flatForecasts(30))
		h.holdThenPause()
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-1 %s while %s waits queued: not held", got, id)
		}
		h.purgeNode(node)
		h.step(20 * time.Second)
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
			t.Fatalf("a-1 registered again %s; the test needs it back eligible", got)
		}
		for range 4 {
			h.quarterPass()
			if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
				t.Fatalf("a-1 %s at %s while %s waits in the paused queue: taken out again; decisions %+v",
					got, h.now().Format("15:04:05"), id, h.decisionsSaying("", "a-1"))
			}
		}
		mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
		h.quarterPass()
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Errorf("a-1 %s after the resume: %s does not hold it again; decisions %+v", got, id, h.decisionsSaying("", "a-1"))
		}
		if got := h.decisionsSaying("", "a-1 was purged from Nomad and its client registered it again"); len(got) != 1 {
			t.Errorf("decisions on holding a-1 again %q; want one, after the resume", got)
		}
	})
	t.Run("given back again", func(t *testing.T) {
		h := newHarness(t, actScenario+"\nreregister = \"2m\"\n", actPolicies)
		node := h.nodeID("a-")
		mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
		first, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
		if err != nil {
			t.Fatal(err)
		}
		h.run(h.flatForecasts(30))
		h.holdThenPause()
		h.step(3 * time.Minute) // a heartbeat: a-1's client hears it is out
		h.purgeNode(node)
		mustApply(t, h, state.CancelRequest{ID: first, At: h.now(), Reason: "test: the operator gives it up"})
		h.quarterPass()
		if got := h.decisionsSaying("", "a-1 was purged from Nomad: nothing to give back"); len(got) != 1 {
			t.Fatalf("decisions on giving a-1 back while purged %q; want one", got)
		}
		h.registeredAgain(node, "a-1")
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-1 registered again %s; the test needs it out, as its client last heard", got)
		}
		second, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance, again"})
		if err != nil {
			t.Fatal(err)
		}
		h.quarterPass()
		h.quarterPass()
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
			t.Errorf("a-1 %s while %s waits in the paused queue: the give-back of its registration was held back; decisions %q",
				got, second, h.decisionsSaying("", "a-1"))
		}
		mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
		h.quarterPass()
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Errorf("a-1 %s after the resume: %s did not take it out; decisions %q", got, second, h.decisionsSaying("", "a-1"))
		}
	})
}

// TestNodeMovedAwayIsNotGivenBackAgain: a whole-node request of a-1 held
// it and was cancelled as a-1 was purged; its give-back found a-1 gone,
// and a-1's client registered it again out of scheduling, as it last
// heard. A second whole-node request of a-1 then ran and was done: a-1 is
// emptied and stays out of scheduling by design, as after `nomad node
// drain`. The re-give-back of the purged registration (giveBackAgainAll)
// made it eligible all the same, at the same pass. Now a node a
// whole-node request moved away since the give-back stays out.
func TestNodeMovedAwayIsNotGivenBackAgain(t *testing.T) {
	h := newHarness(t, actScenario+"\nreregister = \"2m\"\n", actPolicies)
	node := h.nodeID("a-")
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	first, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	h.holdThenPause()
	h.step(3 * time.Minute) // a heartbeat: a-1's client hears it is out
	h.purgeNode(node)
	mustApply(t, h, state.CancelRequest{ID: first, At: h.now(), Reason: "test: the operator gives it up"})
	h.quarterPass()
	if got := h.decisionsSaying("", "a-1 was purged from Nomad: nothing to give back"); len(got) != 1 {
		t.Fatalf("decisions on giving a-1 back while purged %q; want one", got)
	}
	h.registeredAgain(node, "a-1")
	second, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance, again"})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	for range 4 {
		h.quarterPass()
	}
	if r := h.request(second); r.State != state.RequestDone {
		t.Fatalf("%s %s; the test needs it done", second, r.State)
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 %s after %s moved it away; want it out of scheduling by design; decisions %q", got, second, h.decisionsSaying("", "a-1"))
	}
}
