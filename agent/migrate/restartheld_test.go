package migrate

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestRestartKeepsANodeAWindowHoldsForOthers: a node two holds of
// foreshape's keep out of scheduling (a drain window under way and a
// spread that ended in it, or a whole-node request given up in it) waits
// for the window's end, and so it does across a leader change: the new
// leader's follower, whose first pass comes before its first plan (its
// policies not read yet: the allocation watch starts as the term's
// reconciliation ends), leaves the node out. Before, restoreSpreads and
// restoreAbandoned ran in that pass and read the window's end as its
// start (windowEnd without policies), so the node went back to scheduling
// in the middle of the window, and nothing took it out again until its
// end (TestRestartKeepsAWindowsNodesOut has the window's own give-back
// wait so).
func TestRestartKeepsANodeAWindowHoldsForOthers(t *testing.T) {
	t.Run("spread", func(t *testing.T) {
		h := newHarness(t, actScenario+cacheJob, windowPolicies(""))
		node := h.nodeID("a-")
		s := h.runningSpread(node, true)
		w := h.windowRequest(func(state.MigrationRequest) bool { return true })
		end := h.windowEnd(w)
		h.passUntil(end.Add(-40*time.Minute), nil)
		h.endSpread(s)
		h.passUntil(h.now().Add(time.Minute), nil)
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-1 %s at %s, its spread ended in the window (it ends %s): the test needs the old leader to hold it",
				got, h.now().Format("15:04"), end.Format("15:04"))
		}
		h.restartFollows(node, end)
	})
	t.Run("given-up node", func(t *testing.T) {
		h := newHarness(t, actScenario+cacheJob, offWindowPolicies())
		node := h.nodeID("a-")
		mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
		id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Reason: "maintenance"})
		if err != nil {
			t.Fatal(err)
		}
		h.run(h.flatForecasts(30))
		h.holdThenPause()
		_, end := h.runningWindow(node)
		mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: "test: the operator gives it up"})
		h.passUntil(h.now().Add(2*time.Minute), nil)
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			t.Fatalf("a-1 %s at %s, %s given up in the window (it ends %s): the test needs the old leader to hold it",
				got, h.now().Format("15:04"), id, end.Format("15:04"))
		}
		h.restartFollows(node, end)
	})
}

// restartFollows starts a new leader over the harness's state inside a
// window that ends at end, runs its term's reconciliation and then its
// follower before its first plan, and fails the test if node is back in
// scheduling after that; the new leader then runs passes to the window's
// end, which must give node back.
func (h *harness) restartFollows(node string, end time.Time) {
	h.t.Helper()
	h.c = newCoordinatorOn(h.t, h)
	h.leadsAgain(node, end)
}

// leadsAgain has the harness's coordinator begin a term inside a window
// that ends at end and follow before its first plan, as restartFollows.
func (h *harness) leadsAgain(node string, end time.Time) {
	h.t.Helper()
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		h.t.Fatal(err)
	}
	if err := h.c.Follow(h.ctx, h.now()); err != nil {
		h.t.Fatal(err)
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		h.t.Fatalf("a-1 %s after the new leader's first follower pass at %s, inside the window (it ends %s); decisions %+v",
			got, h.now().Format("15:04"), end.Format("15:04"), h.local.FSM.Decisions())
	}
	h.passUntil(end.Add(-time.Minute), func() {
		if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
			h.t.Fatalf("a-1 %s at %s, inside the window (it ends %s)", got, h.now().Format("15:04"), end.Format("15:04"))
		}
	})
	h.passUntil(end.Add(3*time.Minute), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		h.t.Errorf("a-1 %s after the window ended: not given back; decisions %+v", got, h.local.FSM.Decisions())
	}
}

// TestLeaderAgainReadsItsPoliciesFirst: agent A leads with no drain
// window in its policies, then B leads, the policies reloaded with dc1's
// maintenance window (06:30–07:30), whose moves B runs, a-1 out of
// scheduling from 06:10. At 06:40 A leads again. A's follower, whose
// first pass of the term comes before its first plan, read the policies
// of A's last pass, a term ago: the window was none of theirs, so it read
// the window as over (windowEnd, shape.WindowGone) and made a-1 eligible
// mid-window, where nothing took it out again until its end. A term's
// follower now waits for the term's first plan, as a restarted agent's
// does (TestRestartKeepsAWindowsNodesOut).
func TestLeaderAgainReadsItsPoliciesFirst(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	node := h.nodeID("a-")
	h.passUntil(h.now(), nil) // A's pass: its policies have no window
	a := h.c
	h.c = newCoordinatorOn(t, h) // B leads
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	ps, diags := policies.Parse("act.hcl", []byte(windowPolicies("")))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	h.pols = ps
	w := h.windowRequest(func(state.MigrationRequest) bool { return true })
	end := h.windowEnd(w)
	h.passUntil(time.Date(2026, 1, 5, 6, 40, 0, 0, time.UTC), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s at 06:40 under B: the test needs the window to hold it", got)
	}
	h.c = a // A leads again
	h.leadsAgain(node, end)
}
