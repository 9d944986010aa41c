package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// holdThenPause holds the nodes of the queued whole-node requests
// (holdNodes) as a pass before a pause did, and pauses the queue: a
// paused queue takes nothing out, so a test of a request held while it
// waits in a paused queue holds it this way. It follows a pass (the
// coordinator's view of the nodes).
func (h *harness) holdThenPause() {
	h.t.Helper()
	mustApply(h.t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	var ds []state.Decision
	h.c.holdNodes(h.ctx, h.now(), h.pols, &ds)
	mustApply(h.t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
}

// TestPausedQueueTakesNothingOut: the queue is paused before the
// maintenance window's requests are queued at 06:10 (they would wait for
// a reservation until 06:22 anyway). A paused queue takes no node out of
// scheduling, by either path: the window's own hold (holdWindows, the
// reschedule strategy) skipped while paused, but a drain strategy's
// request of a-1 held its node from its queueing (holdNodes) all the same.
// Now a-1 stays in scheduling until the resume at 06:16 and goes out at
// the first pass after it, under both strategies, and is given back at
// the window's end.
func TestPausedQueueTakesNothingOut(t *testing.T) {
	for _, tc := range []struct{ name, pols string }{
		{"window's hold", cappedWindowPolicies()},
		{"drain's node hold", drainStrategy(cappedWindowPolicies())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, tc.pols)
			node := h.nodeID("a-")
			mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
			h.passUntil(time.Date(2026, 1, 5, 6, 15, 0, 0, time.UTC), func() {
				if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
					t.Fatalf("a-1 %s at %s while the queue is paused; decisions %+v", got, h.now().Format("15:04"), h.local.FSM.Decisions())
				}
			})
			queued := 0
			for _, x := range h.local.FSM.Act().Requests {
				if x.Origin == "schedule" && x.State.Queued() {
					queued++
				}
			}
			if queued == 0 {
				t.Fatal("no window request queued by 06:15; the test needs them waiting in the paused queue")
			}
			mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
			resumed := h.now().Format("15:04")
			spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), node)[node]
			if want := []string{resumed + "–07:30"}; !slices.Equal(spans, want) {
				t.Errorf("a-1 out of scheduling %q; want %q (from the first pass after the resume)", spans, want)
			}
		})
	}
}

// TestPausedQueueHoldsBackNoGiveBack: a give-back that comes due while
// the queue is paused is not held back by a request that waits queued,
// which takes nothing out while the queue is paused (a running or started
// one still holds it back). Before, a queued request held the node out of
// scheduling for as long as the pause lasted. After the resume, the
// waiting request takes the node out at the next pass.
//   - another window: dc1's maintenance (06:30–07:30) took a-1 out; the
//     same policy's late-maint (07:45–08:45) queues its request that moves
//     nothing at 07:25, in a paused queue. At 07:30 maintenance gives a-1
//     back (before: held until late-maint's end at 08:45); after the
//     resume at 07:36, late-maint's request takes a-1 out until 08:45.
//   - another request: a whole-node request of a-1 held it and is
//     cancelled while a second waits queued for a-1 in the paused queue:
//     a-1 goes back at the next pass (before: held while the pause
//     lasted), and out again for the second after the resume.
func TestPausedQueueHoldsBackNoGiveBack(t *testing.T) {
	t.Run("another window", func(t *testing.T) {
		pols := strings.Replace(windowPolicies(""), `  schedule "maintenance" {`, `  schedule "late-maint" {
    cron       = "45 7 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
  }
  schedule "maintenance" {`, 1)
		h := newHarness(t, actScenario, pols)
		node := h.nodeID("a-")
		h.passUntil(time.Date(2026, 1, 5, 7, 20, 0, 0, time.UTC), nil)
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-1 %s at 07:20 in maintenance's window; the test needs it out", got)
		}
		mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
		spans := h.outSpans(time.Date(2026, 1, 5, 7, 35, 0, 0, time.UTC), node)[node]
		if want := []string{"07:21–07:30"}; !slices.Equal(spans, want) {
			t.Errorf("a-1 out of scheduling %q while the queue is paused; want %q (given back at maintenance's end)", spans, want)
		}
		holds := h.holdRequests()
		if len(holds) != 1 || !holds[0].State.Queued() {
			t.Fatalf("hold requests %+v; the test needs late-maint's queued", holds)
		}
		mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
		resumed := h.now().Format("15:04")
		spans = h.outSpans(time.Date(2026, 1, 5, 8, 48, 0, 0, time.UTC), node)[node]
		if want := []string{resumed + "–08:45"}; !slices.Equal(spans, want) {
			t.Errorf("a-1 out of scheduling %q after the resume; want %q", spans, want)
		}
	})
	t.Run("another request", func(t *testing.T) {
		h := newHarness(t, actScenario, actPolicies)
		node := h.nodeID("a-")
		mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
		first, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
		if err != nil {
			t.Fatal(err)
		}
		h.run(h.flatForecasts(30))
		h.holdThenPause()
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-1 %s while %s waits queued: not held", got, first)
		}
		mustApply(t, h, state.CancelRequest{ID: first, At: h.now(), Reason: "test: the operator gives it up"})
		second, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance, again"})
		if err != nil {
			t.Fatal(err)
		}
		h.quarterPass()
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
			t.Errorf("a-1 %s while %s waits in the paused queue: %s's give-back was held back; decisions %+v", got, second, first, h.local.FSM.Decisions())
		}
		mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
		h.quarterPass()
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Errorf("a-1 %s after the resume: %s did not take it out; decisions %+v", got, second, h.local.FSM.Decisions())
		}
	})
}
