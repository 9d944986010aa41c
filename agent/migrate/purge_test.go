package migrate

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// decommissioned is scenario with clients that stop with a purge, as when
// an operator decommissions a node: a purged node stays gone. Otherwise
// the simulator's client registers it again 15 s later, as Nomad's does
// (TestReregisteredNodeIsHeldAgain).
func decommissioned(scenario string) string {
	return scenario + "\nreregister = \"never\"\n"
}

// purgeNode purges node from the simulated Nomad, as `nomad node purge`
// does, and returns how many mutating calls the simulator had seen before.
func (h *harness) purgeNode(node string) int {
	h.t.Helper()
	before := len(h.sim.Truth().Requests)
	if _, _, err := h.client.Nodes().Purge(node, nil); err != nil {
		h.t.Fatalf("purge %s: %v", node, err)
	}
	return before + 1
}

// callsOnNodeSince lists the mutating calls made on node's endpoints
// (/v1/node/ID/...) from the since-th on.
func (h *harness) callsOnNodeSince(node string, since int) []string {
	var out []string
	for _, r := range h.sim.Truth().Requests[since:] {
		if strings.HasPrefix(r.Path, "/v1/node/"+node+"/") {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// decisionsSaying lists the reasons of the decisions about request (any
// request when "") whose reason contains s.
func (h *harness) decisionsSaying(request, s string) []string {
	var out []string
	for _, d := range h.local.FSM.Decisions() {
		if (request == "" || d.Request == request) && strings.Contains(d.Reason, s) {
			out = append(out, d.Kind+": "+d.Reason)
		}
	}
	return out
}

// TestNodePurgedUnderItsDrain: a drain-strategy request for a-1 runs
// (Nomad drains it, one allocation at a time), or is queued, when an
// operator purges a-1. Nomad stops what still ran there as lost and
// replaces it, and the allocation its drain had stopped is left as its
// client last reported it, running, for good. A running request ends done
// with a reason saying the node was purged (before: it waited for that
// allocation to stop for ever, as waiting on a stop is no stall and no
// timeout applies to it); a queued one is cancelled when it would start,
// saying so (before: each of its three attempts failed reading the node,
// 404, and it failed); one that had taken a-1 out of scheduling has
// nothing to give back, and says so. Every pass answers, its reservation
// is released, and nothing is called on the node after the purge.
func TestNodePurgedUnderItsDrain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		running bool
		want    state.RequestState
		why     string
	}{
		{"running", true, state.RequestDone, "; node a-1 was purged from Nomad"},
		{"queued", false, state.RequestCancelled, "nothing to move: node a-1 was purged from Nomad since the request was queued"},
		{"queued and held", false, state.RequestCancelled, "nothing to move: node a-1 was purged from Nomad since the request was queued"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, decommissioned(actScenario), drainStrategy(actPolicies))
			node := h.nodeID("a-")
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2", Deadline: h.now().Add(30 * time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			if tc.running {
				for range 10 {
					h.run(h.flatForecasts(30))
					if r := h.request(id); r.State == state.RequestRunning {
						break
					}
					h.step(15 * time.Second)
				}
				if r := h.request(id); r.State != state.RequestRunning {
					t.Fatalf("request %s (%s); want running", r.State, r.Reason)
				}
			}
			if tc.name == "queued and held" {
				// A pass reserves room in dc2 and takes a-1 out of
				// scheduling while the placeholder places.
				h.run(h.flatForecasts(30))
				if r := h.request(id); !r.State.Queued() || h.eligibility(node) != "ineligible" {
					t.Fatalf("request %s (%s), a-1 %s; want queued, a-1 held out of scheduling", r.State, r.Reason, h.eligibility(node))
				}
			}
			purged := h.purgeNode(node)
			h.passUntil(h.now().Add(30*time.Minute), nil)
			r := h.request(id)
			if r.State != tc.want || !strings.Contains(r.Reason, tc.why) || r.Attempts != 0 {
				t.Errorf("request %s after %d attempts: %q; want %s: %q", r.State, r.Attempts, r.Reason, tc.want, tc.why)
			}
			if res, ok := h.local.FSM.Act().ReservationFor(id); ok {
				t.Errorf("reservation %s still %s", res.ID, res.State)
			}
			if calls := h.callsOnNodeSince(node, purged); len(calls) != 0 {
				t.Errorf("calls on the purged node: %v", calls)
			}
			if got := h.decisionsSaying(id, "node a-1 was purged from Nomad: nothing to give back"); tc.name == "queued and held" && len(got) != 1 {
				t.Errorf("decisions on giving a-1 back: %v; want one saying it was purged", got)
			}
			if tc.want == state.RequestCancelled {
				// Cancelled as it was to start: no start decision says
				// it started.
				for _, d := range h.local.FSM.Decisions() {
					if d.Request == id && d.Kind == "start" {
						t.Errorf("a start decision for the request cancelled when it would start: %s", d.Reason)
					}
				}
			}
		})
	}
}

// TestNodePurgedUnderAnAllocationMove: a request moves one web allocation
// off a-1 to dc2, and an operator purges a-1 while it runs (its
// allocation stopped, its state still transferring) or while it is
// queued. Nomad replaces what a-1 ran; the stopped allocation stays
// running in Nomad's state for good, as no client reports its stop. The
// request ends done (its replacement runs in dc2) with a reason saying
// a-1 was purged, instead of waiting for the old allocation to stop
// (before: for ever, as waiting on a stop is no stall and no timeout
// applies to it), and nothing is called on a-1 after the purge.
func TestNodePurgedUnderAnAllocationMove(t *testing.T) {
	for _, tc := range []struct {
		name    string
		running bool
	}{{"running", true}, {"queued", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, decommissioned(actScenario), actPolicies)
			node := h.nodeID("a-")
			a := h.allocs("web")[0]
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
			if err != nil {
				t.Fatal(err)
			}
			if tc.running {
				for range 10 {
					h.run(h.flatForecasts(30))
					if r := h.request(id); r.State == state.RequestRunning {
						break
					}
					h.step(15 * time.Second)
				}
				if r := h.request(id); r.State != state.RequestRunning || r.Moves[0].Stopped.IsZero() {
					t.Fatalf("request %s (%s), moves %+v; want running, its allocation stopped", r.State, r.Reason, r.Moves)
				}
			}
			purged := h.purgeNode(node)
			h.passUntil(h.now().Add(30*time.Minute), nil)
			r := h.request(id)
			if r.State != state.RequestDone || !strings.HasSuffix(r.Reason, "; node a-1 was purged from Nomad") || r.Moves[0].Landed != "dc2" {
				t.Errorf("request %s: %q, moves %+v; want done in dc2, saying a-1 was purged (not when)", r.State, r.Reason, r.Moves)
			}
			if calls := h.callsOnNodeSince(node, purged); len(calls) != 0 {
				t.Errorf("calls on the purged node: %v", calls)
			}
			if n := countStops(h, a.ID); n > 1 {
				t.Errorf("allocation stopped %d times", n)
			}
			if res, ok := h.local.FSM.Act().ReservationFor(id); ok {
				t.Errorf("reservation %s still %s", res.ID, res.State)
			}
		})
	}
}

// TestPurgedNodeIsNotGivenBack: foreshape holds a-1 out of scheduling —
// a spread moves work off it, or a maintenance window (by rescheduling or
// by a Nomad drain) empties it — when an operator purges a-1. When what
// held it ends, there is no node to give back: foreshape calls nothing on
// a-1 (before: each give-back read a-1, failed on its 404, was logged as
// a warning and announced again, up to ten times), records a decision
// saying a-1 was purged, and its passes answer throughout.
func TestPurgedNodeIsNotGivenBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		// hold starts what takes a-1 out of scheduling and returns when
		// it will have ended.
		hold     func(h *harness) time.Time
		scenario string
		pols     string
	}{
		{"spread", func(h *harness) time.Time {
			h.run(h.flatForecasts(30))
			return h.now().Add(20 * time.Minute)
		}, spreadScenario, spreadPolicies},
		{"window", func(h *harness) time.Time {
			r := h.windowRequest(func(state.MigrationRequest) bool { return true })
			h.passUntil(r.Deadline, nil)
			return h.windowEnd(r).Add(5 * time.Minute)
		}, actScenario, windowPolicies("")},
		{"drain window", func(h *harness) time.Time {
			r := h.windowRequest(func(state.MigrationRequest) bool { return true })
			h.passUntil(r.Deadline, nil)
			return h.windowEnd(r).Add(5 * time.Minute)
		}, actScenario, drainStrategy(windowPolicies(""))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, decommissioned(tc.scenario), tc.pols)
			node := h.nodeID("a-")
			end := tc.hold(h)
			if got := h.eligibility(node); got != "ineligible" {
				t.Fatalf("a-1 %s; want it held out of scheduling", got)
			}
			purged := h.purgeNode(node)
			h.passUntil(end, nil)
			if calls := h.callsOnNodeSince(node, purged); len(calls) != 0 {
				t.Errorf("calls on the purged node: %v", calls)
			}
			for _, r := range h.local.FSM.Act().Requests {
				if !r.State.Terminal() {
					t.Errorf("request %s %s: %s", r.ID, r.State, r.Reason)
				}
			}
			for _, in := range h.local.FSM.Intents() {
				if in.Object == node && (in.Open() || strings.Contains(in.ID, "~") || in.Outcome == state.OutcomeFailed) {
					t.Errorf("intent on the purged node %s: %s %s", in.ID, in.Outcome, in.Error)
				}
			}
			if got := h.decisionsSaying("", "a-1 was purged"); len(got) == 0 {
				t.Errorf("no decision says a-1 was purged: %+v", h.local.FSM.Decisions())
			}
		})
	}
}

// TestPurgedNodeUnderAPlaceholder: a request to move a web allocation to
// dc2 (steered there by an affinity) holds a reservation there, its placeholder allocation on one of
// dc2's nodes, when an operator purges that node. Nomad stops the
// placeholder's allocation as lost and places it again on dc2's other
// node; the request then moves as usual, hands the placeholder over and
// releases it, every pass answering and nothing called on the purged
// node.
func TestPurgedNodeUnderAPlaceholder(t *testing.T) {
	h := newHarness(t, decommissioned(actScenario), affinityStrategy(actPolicies))
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30)) // reserves
	res, ok := h.local.FSM.Act().ReservationFor(id)
	if !ok {
		t.Fatalf("no reservation for %s", id)
	}
	h.step(10 * time.Second)
	holds := h.allocs(res.Job)
	if len(holds) != 1 || holds[0].ClientStatus != "running" {
		t.Fatalf("placeholder allocations %+v; want one running", holds)
	}
	node := holds[0].NodeID
	purged := h.purgeNode(node)
	r := h.moveToDone(id)
	if r.State != state.RequestDone || r.Moves[0].Landed != "dc2" || r.Moves[0].TargetNode == node {
		t.Errorf("request %s: %q, moves %+v; want done in dc2", r.State, r.Reason, r.Moves)
	}
	if res, ok := h.local.FSM.Act().ReservationFor(id); ok {
		t.Errorf("reservation %s still %s", res.ID, res.State)
	}
	if calls := h.callsOnNodeSince(node, purged); len(calls) != 0 {
		t.Errorf("calls on the purged node: %v", calls)
	}
	t.Logf("decisions: %v", h.decisionsSaying(id, ""))
}

// TestReregisteredNodeIsHeldAgain: a maintenance window (by rescheduling
// or by a Nomad drain) holds a-1 out of scheduling when an operator
// purges it, its client still running. At its next heartbeat the client
// registers a-1 again, as Nomad's does (TestFidelityNodePurge): the same
// ID, a new create index, no drain, and the eligibility the client heard
// at its last heartbeat. Purged within a heartbeat of foreshape taking it
// out, a-1 comes back eligible: nobody gave it back, so foreshape takes
// it out again for the rest of the window, with a hold decision saying
// why (before: it left it eligible, taken for an operator's give-back,
// and the window's replacements could land on it). Purged later, it comes
// back ineligible, and stays so. Either way the window's end gives it
// back, and a node an operator makes eligible meanwhile stays so: that is
// the operator's choice.
func TestReregisteredNodeIsHeldAgain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pols     string
		late     bool // purged a heartbeat or more after foreshape took a-1 out
		operator bool // an operator makes a-1 eligible once it is back
	}{
		{"window", windowPolicies(""), false, false},
		{"drain window", drainStrategy(windowPolicies("")), false, false},
		{"window, then an operator gives it back", windowPolicies(""), false, true},
		{"window, purged late", windowPolicies(""), true, false},
		{"window, purged late, then an operator gives it back", windowPolicies(""), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, tc.pols)
			node := h.nodeID("a-")
			r := h.windowRequest(func(state.MigrationRequest) bool { return true })
			var before *nomadapi.Node
			purge := func() {
				var err error
				if before, _, err = h.client.Nodes().Info(node, nil); err != nil {
					t.Fatal(err)
				}
				h.purgeNode(node)
			}
			// Right after the pass that takes a-1 out, or after the window's
			// moves.
			h.passUntil(r.Deadline, func() {
				if !tc.late && before == nil && h.eligibility(node) == "ineligible" {
					purge()
				}
			})
			if before == nil {
				if got := h.eligibility(node); got != "ineligible" {
					t.Fatalf("a-1 %s; want it held out of scheduling", got)
				}
				purge()
			}
			end := h.windowEnd(h.request(r.ID))
			back := h.now().Add(2 * time.Minute)
			if !back.Before(end) {
				t.Fatalf("the window ends at %s, before %s", end.Format(time.TimeOnly), back.Format(time.TimeOnly))
			}
			h.passUntil(back, nil)
			n, _, err := h.client.Nodes().Info(node, nil)
			if err != nil {
				t.Fatalf("a-1 did not register again: %v", err)
			}
			if n.CreateIndex <= before.CreateIndex || n.SchedulingEligibility != "ineligible" || n.DrainStrategy != nil {
				t.Errorf("a-1 registered again (create index %d, was %d) and %s, drain %v; want it out of scheduling, no drain", n.CreateIndex, before.CreateIndex, n.SchedulingEligibility, n.DrainStrategy)
			}
			again := h.decisionsSaying("", "a-1 was purged from Nomad and its client registered it again")
			want := 1
			if tc.late {
				want = 0 // it came back out of scheduling
			}
			if len(again) != want || (want == 1 && (!strings.HasPrefix(again[0], "hold: ") || !strings.Contains(again[0], "nobody gave it back"))) {
				t.Errorf("decisions on holding a-1 again: %v; want %d hold", again, want)
			}
			if got := h.decisionsSaying("", "a-1 eligible again"); len(got) != 0 {
				t.Errorf("a-1 given back before the window ended: %v", got)
			}
			if tc.operator {
				if _, err := h.client.Nodes().ToggleEligibility(node, true, nil); err != nil {
					t.Fatal(err)
				}
				h.passUntil(h.now().Add(2*time.Minute), nil)
				if got := h.eligibility(node); got != "eligible" {
					t.Errorf("a-1 %s after an operator made it eligible; want the operator's choice to stand", got)
				}
				if got := h.decisionsSaying("", "registered it again"); len(got) != want {
					t.Errorf("decisions on holding a-1 again: %v; want %d, none after the operator's give-back", got, want)
				}
			}
			h.passUntil(end.Add(5*time.Minute), nil)
			if got := h.eligibility(node); got != "eligible" {
				t.Errorf("a-1 %s after the window; want it given back", got)
			}
			for _, in := range h.local.FSM.Intents() {
				if in.Object == node && (in.Open() || in.Outcome == state.OutcomeFailed) {
					t.Errorf("intent on a-1 %s: %s %s", in.ID, in.Outcome, in.Error)
				}
			}
			t.Logf("decisions on a-1: %v", h.decisionsSaying("", "a-1"))
		})
	}
}

// TestMoveHoldsAReregisteredNodeAgain: a window's move checks, before it
// stops anything, that its nodes are out of scheduling (keepOut). a-1,
// which foreshape took out for the window's request, was purged within a
// heartbeat of that and registered again by its client, eligible, before
// the act pass's own look: the check takes it out again and says why,
// rather than going ahead on an operator's give-back nobody made
// (before: "goes ahead although node a-1 is in scheduling again … an
// operator's choice stands"). What tells a give-back is Nomad's node
// events, not the node's modify index: a change that leaves the
// eligibility alone (here a drain removed from a node without one, as a
// client's fingerprint update would) moved the index and was read as a
// give-back; an operator who takes the node out and gives it back is.
func TestMoveHoldsAReregisteredNodeAgain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		touch func(h *harness, node string)
		again bool
	}{
		{"as registered", nil, true},
		{"modified, its eligibility untouched", func(h *harness, node string) {
			if _, err := h.client.Nodes().UpdateDrain(node, nil, true, nil); err != nil {
				h.t.Fatal(err)
			}
		}, true},
		{"taken out and given back by an operator", func(h *harness, node string) {
			for _, eligible := range []bool{false, true} {
				if _, err := h.client.Nodes().ToggleEligibility(node, eligible, nil); err != nil {
					h.t.Fatal(err)
				}
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, windowPolicies(""))
			node := h.nodeID("a-")
			r := h.windowRequest(func(state.MigrationRequest) bool { return true })
			for range 60 {
				h.run(h.flatForecasts(30))
				if err := h.c.Follow(h.ctx, h.now()); err != nil {
					t.Fatal(err)
				}
				if h.eligibility(node) == "ineligible" {
					break
				}
				h.step(time.Minute)
			}
			if got := h.eligibility(node); got != "ineligible" {
				t.Fatalf("a-1 %s; want the window to hold it out of scheduling", got)
			}
			h.purgeNode(node)
			h.step(20 * time.Second) // the client registers a-1 again, eligible
			if got := h.eligibility(node); got != "eligible" {
				t.Fatalf("a-1 registered again %s; want eligible", got)
			}
			if tc.touch != nil {
				before, _, err := h.client.Nodes().Info(node, nil)
				if err != nil {
					t.Fatal(err)
				}
				tc.touch(h, node)
				after, _, err := h.client.Nodes().Info(node, nil)
				if err != nil {
					t.Fatal(err)
				}
				if after.ModifyIndex == before.ModifyIndex || after.SchedulingEligibility != "eligible" {
					t.Fatalf("a-1 touched: modify index %d → %d, %s; want it moved, eligible", before.ModifyIndex, after.ModifyIndex, after.SchedulingEligibility)
				}
			}
			r = h.request(r.ID)
			var ds []state.Decision
			if err := h.c.keepOut(h.ctx, h.now(), r, r.Moves, &ds); err != nil {
				t.Errorf("keepOut: %v", err)
			}
			want, saying := "eligible", "goes ahead although node a-1"
			if tc.again {
				want, saying = "ineligible", "a-1 was purged from Nomad and its client registered it again"
			}
			if got := h.eligibility(node); got != want {
				t.Errorf("a-1 %s; want %s", got, want)
			}
			if len(ds) != 1 || !strings.Contains(ds[0].Reason, saying) || (tc.again && ds[0].Kind != "hold") {
				t.Errorf("decisions %+v; want one saying %q", ds, saying)
			}
			if !tc.again {
				return
			}
			// Held again once for this registration: the next check finds it out.
			ds = nil
			if err := h.c.keepOut(h.ctx, h.now(), r, r.Moves, &ds); err != nil || len(ds) != 0 {
				t.Errorf("keepOut again: %v, decisions %+v; want nothing to do", err, ds)
			}
		})
	}
}

// TestPurgedNodeIsGivenBackWhenItReturns: a maintenance window holds a-1
// out of scheduling, its client heartbeating every two minutes, and an
// operator purges a-1 either before the window ends (the give-back then
// has nothing to give back) or just after its give-back, before the client
// heard of it. Either way the client registers a-1 again out of
// scheduling, as it last heard: foreshape gives it back, with a restore
// decision saying why (before: it stayed out of scheduling for good,
// nobody's hold; a purge after the give-back was not looked at at all).
// A node an operator takes out after it registered stays out: that is
// the operator's choice.
func TestPurgedNodeIsGivenBackWhenItReturns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		after    bool // purged just after the give-back, not during the hold
		operator bool // an operator takes a-1 out once it is back
		says     string
	}{
		{"purged while held", false, false, "purged from Nomad while foreshape held it"},
		{"purged while held, an operator takes it out once it is back", false, true, ""},
		{"purged just after its give-back", true, false, "purged from Nomad just after foreshape gave it back"},
		{"purged just after its give-back, an operator takes it out once it is back", true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario+"\nreregister = \"2m\"\n", windowPolicies(""))
			node := h.nodeID("a-")
			r := h.windowRequest(func(state.MigrationRequest) bool { return true })
			h.passUntil(r.Deadline, nil)
			end := h.windowEnd(h.request(r.ID))
			h.passUntil(end.Add(-20*time.Second), nil)
			if got := h.eligibility(node); got != "ineligible" {
				t.Fatalf("a-1 %s before the window's end; want it held out of scheduling", got)
			}
			if tc.after {
				// A pass at a time, purged as soon as a pass gave it back.
				for n := 0; ; n++ {
					h.run(h.flatForecasts(30))
					if err := h.c.Follow(h.ctx, h.now()); err != nil {
						t.Fatal(err)
					}
					if h.eligibility(node) == "eligible" {
						break
					}
					if n > 20 {
						t.Fatal("a-1 not given back within five minutes of the window's end")
					}
					h.step(15 * time.Second)
				}
				h.purgeNode(node)
			} else {
				h.purgeNode(node)
				h.passUntil(end.Add(20*time.Second), nil)
				if got := h.decisionsSaying("", "a-1 was purged from Nomad: nothing to give back"); len(got) != 1 {
					t.Fatalf("decisions on giving a-1 back while purged: %v; want one", got)
				}
			}
			h.registeredAgain(node, "a-1")
			if got := h.eligibility(node); got != "ineligible" {
				t.Fatalf("a-1 registered again %s; want ineligible, as its client last heard", got)
			}
			want := "eligible"
			if tc.operator {
				if _, err := h.client.Nodes().ToggleEligibility(node, true, nil); err != nil {
					t.Fatal(err)
				}
				if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
					t.Fatal(err)
				}
				want = "ineligible"
			}
			h.passUntil(h.now().Add(5*time.Minute), nil)
			if got := h.eligibility(node); got != want {
				t.Errorf("a-1 %s five minutes after it registered again; want %s", got, want)
			}
			back := h.decisionsSaying("", "a-1 eligible again: it was purged from Nomad")
			if tc.operator && len(back) != 0 || !tc.operator && (len(back) != 1 || !strings.Contains(back[0], tc.says)) {
				t.Errorf("decisions on giving a-1 back again: %v; want %q", back, tc.says)
			}
			for _, in := range h.local.FSM.Intents() {
				if in.Object == node && (in.Open() || in.Outcome == state.OutcomeFailed) {
					t.Errorf("intent on a-1 %s: %s %s", in.ID, in.Outcome, in.Error)
				}
			}
		})
	}
}
