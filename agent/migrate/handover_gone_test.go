package migrate

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// TestHandOverToAPurgedPlaceholder: a node move's two allocations move
// one at a time (dc1's max_parallel is 1) into a reservation; once the
// first has landed, an operator purges the placeholder job
// (`nomad job stop -purge`). The next follower pass both ends the first
// move and reaches the second's hand-over, before its reaper has seen
// the placeholder gone: the placeholder group cannot be scaled (Nomad
// answers 404), and there is no room left to hand over. The second move
// goes on, as a running move's does once the reaper marks a vanished
// placeholder's reservation released, using up none of the request's
// attempts (before: the hand-over's 404 failed the attempt and queued the
// running request again).
func TestHandOverToAPurgedPlaceholder(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	node := h.nodeID("a-")
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30)) // reserves
	res, ok := h.local.FSM.Act().ReservationFor(id)
	if !ok {
		t.Fatalf("no reservation for %s", id)
	}
	h.step(30 * time.Second)
	h.run(h.flatForecasts(30)) // starts: the first hand-over and stop
	r := h.request(id)
	if r.State != state.RequestRunning {
		t.Fatalf("request %s: %s", r.State, r.Reason)
	}
	first := ""
	for _, m := range r.Moves {
		if !m.Stopped.IsZero() {
			first = m.Alloc
		}
	}
	if first == "" {
		t.Fatalf("no move stopped: %+v", r.Moves)
	}
	// Nomad places the first allocation's replacement; then the operator
	// purges the placeholder, before any follower pass.
	for n := 0; ; n++ {
		landed := false
		for _, a := range h.allocs("web") {
			if strings.HasPrefix(a.NodeName, "b-") && a.ClientStatus == "running" {
				landed = true
			}
		}
		if landed {
			break
		}
		if n > 60 {
			t.Fatalf("the replacement of %s never ran", first)
		}
		h.step(5 * time.Second)
	}
	if _, _, err := h.client.Jobs().Deregister(res.Job, true, nil); err != nil {
		t.Fatal(err)
	}
	got := h.moveToDone(id)
	if got.State != state.RequestDone || got.Attempts != 0 {
		t.Errorf("request %s after %d attempts: %s; want done using up no attempt", got.State, got.Attempts, got.Reason)
	}
	for _, d := range h.local.FSM.Decisions() {
		if d.Request == id && (d.Kind == "retry" || d.Kind == "fail") {
			t.Errorf("%s decision: %s", d.Kind, d.Reason)
		}
	}
	if left, ok := h.local.FSM.Act().ReservationFor(id); ok {
		t.Errorf("reservation %s still %s", left.ID, left.State)
	}
	for _, m := range got.Moves {
		if !m.Done || m.Landed != "dc2" {
			t.Errorf("move %+v; want done in dc2", m)
		}
	}
}
