package migrate

import (
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// TestPausedQueueStillReservesForItsWaitingRequests: what a pause does to
// placeholders. A request waits in a paused queue for 150 minutes; the
// planner places its reservation as in a queue that runs, and places them
// anew: at each expiry (reserve.ttl, an hour) the reservation is released
// and its placeholder removed, and a new one is placed for the request
// still waiting. So a long pause holds the room, a placeholder at
// a time, none past its ttl: rs-1, rs-2 and rs-3 in 150 minutes. After
// the resume the move is done.
func TestPausedQueueStillReservesForItsWaitingRequests(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: h.nodeID("a-"), Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	ttl := time.Hour
	end := h.now().Add(150 * time.Minute)
	h.passUntil(end, func() {
		if r := h.request(id); r.State != state.RequestWaiting && r.State != state.RequestReserving && r.State != state.RequestPending {
			t.Fatalf("request %s at %s in a paused queue: %s", r.State, h.now().Format("15:04"), r.Reason)
		}
		for _, res := range h.local.FSM.Act().Reservations {
			if res.State == state.ReservationReleased {
				continue
			}
			if h.now().Sub(res.Placed) > ttl+time.Minute {
				t.Fatalf("reservation %s placed at %s still %s at %s, past its ttl", res.ID, res.Placed.Format("15:04"), res.State, h.now().Format("15:04"))
			}
			if _, _, err := h.client.Jobs().Info(res.Job, nil); err != nil {
				t.Fatalf("reservation %s %s at %s without its placeholder %s: %v", res.ID, res.State, h.now().Format("15:04"), res.Job, err)
			}
		}
	})
	var ids []string
	for _, res := range h.local.FSM.Act().Reservations {
		if res.Request == id {
			ids = append(ids, res.ID+" "+string(res.State)+" placed "+res.Placed.Format("15:04"))
		}
	}
	if len(ids) != 3 {
		t.Fatalf("reservations of %s over 150 paused minutes: %q; want three, one an hour", id, ids)
	}
	held, ok := h.local.FSM.Act().ReservationFor(id)
	if !ok || held.State != state.ReservationHeld {
		t.Fatalf("no reservation held at the end of the pause: %q", ids)
	}
	mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
	got := h.moveToDone(id)
	if got.State != state.RequestDone {
		t.Errorf("request %s after the resume: %s", got.State, got.Reason)
	}
	t.Logf("reservations: %q", ids)
}
