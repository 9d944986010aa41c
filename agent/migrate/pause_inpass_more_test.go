package migrate

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestPauseDuringAPassHoldsTheJoinedNodesAfterIt: dc1's maintenance
// window (06:30–07:30) is under way when two nodes join dc1 at 06:39, and
// one pass takes them out of scheduling as late joiners (holdJoined), one
// after the other. The queue is paused during that pass, after the first
// node's take-out and before the second's: the second stays in
// scheduling, though the pass read the queue running at its start
// (before, holdJoined read the pause once, at its top, and took the
// second node out after the pause). After the resume the next pass takes
// it out. The two places are those of
// TestPauseDuringAPassHoldsTheTakeOutsAfterIt.
func TestPauseDuringAPassHoldsTheJoinedNodesAfterIt(t *testing.T) {
	for _, tc := range pauseDuringTakeOuts(t) {
		t.Run(tc.name, func(t *testing.T) {
			var armed atomic.Bool
			var h *harness
			h = newHarness(t, actScenario, windowPolicies(""), tc.during(&armed, &h))
			h.passUntil(time.Date(2026, 1, 5, 6, 39, 0, 0, time.UTC), nil)
			nodes, err := h.sim.AddNodes("a", 2)
			if err != nil || len(nodes) != 2 {
				t.Fatalf("add two nodes to dc1: %v %v", nodes, err)
			}
			h.step(30 * time.Second)
			for _, n := range nodes {
				if got := h.eligibility(n); got != nomadapi.NodeSchedulingEligible {
					t.Fatalf("%s %s as it joined dc1; the test needs it eligible", n, got)
				}
			}
			armed.Store(true)
			h.run(h.flatForecasts(30))
			if !h.local.FSM.QueuePaused() {
				t.Fatalf("the queue was not paused during the pass; the test needs it; decisions %+v", h.local.FSM.Decisions())
			}
			out := 0
			for _, n := range nodes {
				if h.eligibility(n) == nomadapi.NodeSchedulingIneligible {
					out++
				}
			}
			if out != 1 {
				t.Errorf("%d of the two joined nodes out of scheduling after a pass paused after the first take-out; want 1; decisions %q",
					out, h.decisionsSaying("", "joined the window's localities"))
			}
			for _, in := range h.local.FSM.Act().OpenIntents {
				t.Errorf("intent %s left open", in.ID)
			}
			mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
			h.run(h.flatForecasts(30))
			for _, n := range nodes {
				if got := h.eligibility(n); got != nomadapi.NodeSchedulingIneligible {
					t.Errorf("%s %s after the resume; want it out, held for the window", n, got)
				}
			}
		})
	}
}

// TestPauseBeforeAHoldAgainHoldsIt: a whole-node request of a-1 waits
// queued, its node held (holdNodes); a-1 is purged and its client
// registers it again, eligible, while the queue is paused, so nothing
// holds it again (TestPausedQueueHoldsNothingAgainAfterAPurge). The queue
// is resumed, and paused again in the pass that follows, in the log just
// before the intent that takes a-1 out again (holdAgainAll), after the
// pass read the request as holding a-1. The last check, right before the
// call, reads the pause: a-1 stays in scheduling and the intent closes
// not done (before, holdAgain made the call after the pause). The first
// pass after the next resume holds a-1 again.
func TestPauseBeforeAHoldAgainHoldsIt(t *testing.T) {
	var armed atomic.Bool
	var h *harness
	h = newHarness(t, actScenario, actPolicies, func(cfg *Config) {
		local := cfg.Apply.(*state.Local)
		cfg.Apply = &pauseApplier{local: local, before: func(cmd state.Command) bool {
			o, ok := cmd.(state.OpenIntent)
			return ok && armed.Load() && strings.Contains(o.Intent.ID, "@")
		}, pause: func() { mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"}) }}
	})
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
	h.quarterPass()
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	armed.Store(true)
	h.run(h.flatForecasts(30))
	if !h.local.FSM.QueuePaused() {
		t.Fatalf("the queue was not paused before a hold again; the test needs it; decisions %q", h.decisionsSaying("", "a-1"))
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after a pass paused before its hold again: taken out for %s, queued in a paused queue; decisions %q",
			got, id, h.decisionsSaying("", "a-1"))
	}
	for _, in := range h.local.FSM.Act().OpenIntents {
		t.Errorf("intent %s left open", in.ID)
	}
	if r := h.request(id); !r.State.Queued() {
		t.Fatalf("%s %s; the test needs it queued", id, r.State)
	}
	armed.Store(false)
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	h.run(h.flatForecasts(30))
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 %s after the resume: %s does not hold it again; decisions %q", got, id, h.decisionsSaying("", "a-1"))
	}
	if got := h.decisionsSaying("", "a-1 was purged from Nomad and its client registered it again"); len(got) != 1 {
		t.Errorf("decisions on holding a-1 again %q; want one, after the resume", got)
	}
}
