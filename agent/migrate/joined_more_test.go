package migrate

import (
	"slices"
	"testing"
	"time"

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
