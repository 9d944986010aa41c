package state

import "testing"

// TestActModifiedFollowsEveryActChange: ActModified, the index the
// dashboard's event streams poll (through the agent's QueueIndex), moves
// with a decision or a reservation as with the queue, so that the
// Decisions page and the charts' reservations update live too
// (docs/ui.md: "or its act state changed").
func TestActModifiedFollowsEveryActChange(t *testing.T) {
	l := local(t)
	before := l.FSM.ActModified()
	mustApply(t, l, AppendDecisions{Decisions: []Decision{{Kind: "wait", Locality: "dc2", Reason: "dc2 congested"}}})
	afterDecision := l.FSM.ActModified()
	if afterDecision <= before {
		t.Errorf("ActModified %d after a decision, %d before: want it to move", afterDecision, before)
	}
	mustApply(t, l, PutReservation{Reservation: Reservation{Request: "mr-1", Policy: "p", Locality: "dc2", State: ReservationPlanned,
		Chunks: []Chunk{{Size: Resources{CPU: 500, MemoryMB: 256}, Count: 1}}}})
	if after := l.FSM.ActModified(); after <= afterDecision {
		t.Errorf("ActModified %d after a reservation, %d before: want it to move", after, afterDecision)
	}
}
