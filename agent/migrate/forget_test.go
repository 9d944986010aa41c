package migrate

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/sim"
)

// TestFinishedRequestsAreForgotten runs a drain window of a-1 with
// queue.keep_finished at an hour. Its requests stay while the planner
// still counts the work they moved into dc2 (a day after they finished),
// then go with their intents: the replicated state does not grow with
// every move made. A request whose node foreshape still owes back (Nomad
// refuses to make it eligible) is kept whatever its age.
func TestFinishedRequestsAreForgotten(t *testing.T) {
	for _, owed := range []bool{false, true} {
		name := "given back"
		if owed {
			name = "still owed"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, actScenario, windowPolicies(""), func(c *Config) { c.KeepFinished = time.Hour })
			node := h.nodeID("a-")
			first := h.windowRequest(func(x state.MigrationRequest) bool { return len(x.Moves) > 0 })
			end := h.windowEnd(first)
			eligibility := func() string {
				t.Helper()
				got, _, err := h.client.Nodes().Info(node, nil)
				if err != nil {
					t.Fatal(err)
				}
				return got.SchedulingEligibility
			}
			pass := func() {
				h.run(h.flatForecasts(30))
				if err := h.c.Follow(h.ctx, h.now()); err != nil {
					t.Fatal(err)
				}
			}
			faulty := false
			h.passUntil(end.Add(2*time.Minute), func() {
				if owed && !faulty && eligibility() == nomadapi.NodeSchedulingIneligible {
					// From now on Nomad refuses to make a-1 eligible.
					if err := h.sim.SetFaults(sim.Faults{ErrorRate: 1, PathPrefix: "/v1/node/" + node + "/eligibility"}); err != nil {
						t.Fatal(err)
					}
					faulty = true
				}
			})
			if owed && !faulty {
				t.Fatal("the window never took a-1 out of scheduling")
			}
			key := windowKey(first)
			var ids []string
			var finished time.Time
			for _, r := range h.local.FSM.Act().Requests {
				if r.Origin != "schedule" || windowKey(r) != key {
					continue
				}
				if !r.State.Terminal() {
					t.Fatalf("%s %s after its window ended: %s", r.ID, r.State, r.Reason)
				}
				ids = append(ids, r.ID)
				finished = later(finished, r.Finished)
			}
			ofWindow := func() (requests, intents int) {
				for _, r := range h.local.FSM.Act().Requests {
					if strings.HasPrefix(r.OriginKey, "schedule/") && windowKey(r) == key {
						requests++
					}
				}
				for _, in := range h.local.FSM.Intents() {
					for _, id := range ids {
						if in.Request == id {
							intents++
						}
					}
				}
				return requests, intents
			}
			// An hour after the keep, the planner still counts the work
			// moved into dc2: kept.
			for h.now().Before(finished.Add(23 * time.Hour)) {
				h.step(time.Hour)
				pass()
			}
			if n, in := ofWindow(); n != len(ids) || in == 0 {
				t.Fatalf("%d of the window's %d requests (%d intents) left %s after they finished; want all, with their intents",
					n, len(ids), in, h.now().Sub(finished).Round(time.Minute))
			}
			for h.now().Before(finished.Add(25 * time.Hour)) {
				h.step(time.Hour)
				pass()
			}
			n, in := ofWindow()
			if owed {
				if n != len(ids) {
					t.Errorf("%d of the window's %d requests left while a-1 is still owed back; want all", n, len(ids))
				}
				if got := eligibility(); got != nomadapi.NodeSchedulingIneligible {
					t.Errorf("a-1 %s though Nomad refused every eligibility change", got)
				}
				return
			}
			if n != 0 || in != 0 {
				t.Errorf("%d of the window's %d requests and %d of their intents left a day after they finished; want none", n, len(ids), in)
			}
			for _, id := range ids {
				if _, ok := h.local.FSM.Act().Request(id); ok {
					t.Errorf("%s still queued", id)
				}
			}
		})
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// TestMovedNodeIsForgotten: a whole node moved away stays out of
// scheduling by design (nothing is owed back), so its done request is
// forgotten like any other once the planner is done with it (a day, the
// default season, after it finished) and queue.keep_finished has passed:
// with keep_finished at 48h it is still queued a day after, and gone once
// 48 hours have passed.
func TestMovedNodeIsForgotten(t *testing.T) {
	for _, keep := range []time.Duration{time.Hour, 48 * time.Hour} {
		t.Run(keep.String(), func(t *testing.T) {
			h := newHarness(t, actScenario, actPolicies, func(c *Config) { c.KeepFinished = keep })
			node := h.nodeID("a-")
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
			if err != nil {
				t.Fatal(err)
			}
			r := h.moveToDone(id)
			if r.State != state.RequestDone {
				t.Fatalf("%s %s: %s", id, r.State, r.Reason)
			}
			got, _, err := h.client.Nodes().Info(node, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.SchedulingEligibility != nomadapi.NodeSchedulingIneligible {
				t.Fatalf("a-1 %s after its move; want it left out of scheduling", got.SchedulingEligibility)
			}
			until := func(d time.Duration) {
				for h.now().Before(r.Finished.Add(d)) {
					h.step(time.Hour)
					h.run(h.flatForecasts(30))
				}
			}
			until(25 * time.Hour)
			if _, ok := h.local.FSM.Act().Request(id); ok != (keep > 25*time.Hour) {
				t.Errorf("%s queued %v a day after a-1 moved with keep_finished %s", id, ok, keep)
			}
			if keep > 25*time.Hour {
				until(keep + time.Hour)
				if _, ok := h.local.FSM.Act().Request(id); ok {
					t.Errorf("%s still queued %s after a-1 moved with keep_finished %s", id, keep+time.Hour, keep)
				}
			}
		})
	}
}

// TestPlannedSubmitsNameTheirRequest: a drain window's requests are
// queued by the planner, whose submit decisions carry the IDs the state
// machine gave them, so `decisions -request` lists the submit too.
func TestPlannedSubmitsNameTheirRequest(t *testing.T) {
	h := newHarness(t, actScenario, windowPolicies(""))
	first := h.windowRequest(func(state.MigrationRequest) bool { return true })
	var submits int
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind != "submit" {
			continue
		}
		submits++
		if d.Request == "" {
			t.Errorf("a submit decision names no request: %+v", d)
		}
		if d.Request == first.ID && !strings.Contains(d.Reason, first.Resource.String()) {
			t.Errorf("the submit of %s says %q, not its resource %s", first.ID, d.Reason, first.Resource)
		}
	}
	if submits == 0 {
		t.Fatal("no submit decision recorded")
	}
}
