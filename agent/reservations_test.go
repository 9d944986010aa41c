package agent

import (
	"context"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// TestReservationUntilIsWhenItsPlaceholderEnds: /v1/reservations' until
// is the end no placeholder outlives. For a reservation not released that
// is its expiry (placement plus reserve.ttl), at which the planner
// releases it and the reaper removes its placeholder, not its planned end
// (the move's end plus the lead time), which releases nothing: a move
// that overruns keeps its placeholder past it. For a released one it is
// when it was released.
func TestReservationUntilIsWhenItsPlaceholderEnds(t *testing.T) {
	l, err := state.NewLocal(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 1, 5, 11, 50, 0, 0, time.UTC)
	planned, expires := t0.Add(35*time.Minute), t0.Add(time.Hour)
	chunks := []state.Chunk{{Size: state.Resources{CPU: 500, MemoryMB: 256}, Count: 2}}
	put := func(r state.Reservation) {
		t.Helper()
		r.Policy, r.Locality, r.Chunks, r.From, r.Until, r.Expires = "web", "dc2", chunks, t0, planned, expires
		if _, err := l.Apply(ctx, state.PutReservation{Reservation: r}); err != nil {
			t.Fatal(err)
		}
	}
	put(state.Reservation{Request: "mr-1", Job: "foreshape-reserve-rs-1", State: state.ReservationHeld, Placed: t0})
	put(state.Reservation{Request: "mr-2", State: state.ReservationPlanned})
	put(state.Reservation{Request: "mr-3", Job: "foreshape-reserve-rs-3", State: state.ReservationHeld, Placed: t0})
	// rs-3 released at 12:10, as every release records it (Until).
	released := t0.Add(20 * time.Minute)
	r3 := l.FSM.Act().Reservations[2]
	r3.State, r3.Until = state.ReservationReleased, released
	if _, err := l.Apply(ctx, state.PutReservation{Reservation: r3, IfVersion: r3.Version}); err != nil {
		t.Fatal(err)
	}
	x := &actor{a: &Agent{fsm: l.FSM}}
	got, err := x.Reservations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"rs-1": expires, "rs-2": expires, "rs-3": released}
	if len(got) != len(want) {
		t.Fatalf("%d reservations; want %d: %+v", len(got), len(want), got)
	}
	for _, r := range got {
		if !r.Until.Equal(want[r.ID]) {
			t.Errorf("%s (%s): until %s; want %s", r.ID, r.State, r.Until.Format("15:04"), want[r.ID].Format("15:04"))
		}
	}
}
