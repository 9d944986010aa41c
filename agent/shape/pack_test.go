package shape

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// TestUnplacedPlaceholdersHoldTheirRoom: a reservation whose placeholder
// Nomad has registered but not placed yet (or placed only in part) holds
// room on the target's nodes when a later pass packs another request's
// reservation, counted once: what is placed is in the node's allocations
// already. Packed into the free room alone, two reservations were planned
// onto the same room, and the later placeholder could take it from the
// earlier one. A held chunk that fits on no node holds no node's room: it
// must not make the planner refuse reservations that fit.
func TestUnplacedPlaceholdersHoldTheirRoom(t *testing.T) {
	chunk := func(cpu, mem int64, n int) state.Chunk {
		return state.Chunk{Size: state.Resources{CPU: cpu, MemoryMB: mem}, Count: n}
	}
	tests := []struct {
		name string
		// dc2-4's filler; dc2-1 to dc2-3 are full.
		filler state.Resources
		// rs-1's chunks and the placeholder allocations Nomad placed on
		// dc2-4.
		chunks []state.Chunk
		placed []state.Resources
		// rs-1's request is done: the pass releases it.
		done bool
		// wantReserved are the requests, of mr-2 and mr-3, that get a
		// reservation.
		wantReserved []string
	}{
		{name: "held, not placed: its room is taken", filler: state.Resources{CPU: 2500, MemoryMB: 6000},
			chunks: []state.Chunk{chunk(1000, 1024, 1)}, wantReserved: nil},
		{name: "held, not placed: the room left is packed", filler: state.Resources{CPU: 1500, MemoryMB: 5000},
			chunks: []state.Chunk{chunk(1000, 1024, 1)}, wantReserved: []string{"mr-2"}},
		{name: "partly placed: the placed chunk is counted once", filler: state.Resources{CPU: 1000, MemoryMB: 5120},
			chunks: []state.Chunk{chunk(1000, 1024, 2)}, placed: []state.Resources{{CPU: 1000, MemoryMB: 1024}},
			wantReserved: []string{"mr-2"}},
		{name: "placed in full: nothing more is held", filler: state.Resources{CPU: 1000, MemoryMB: 5120},
			chunks: []state.Chunk{chunk(1000, 1024, 1)}, placed: []state.Resources{{CPU: 1000, MemoryMB: 1024}},
			wantReserved: []string{"mr-2", "mr-3"}},
		{name: "a held chunk that fits nowhere holds no node's room", filler: state.Resources{CPU: 2500, MemoryMB: 6000},
			chunks: []state.Chunk{chunk(3000, 1024, 1)}, wantReserved: []string{"mr-2"}},
		{name: "released in this pass: its room is free", filler: state.Resources{CPU: 2500, MemoryMB: 6000},
			chunks: []state.Chunk{chunk(1000, 1024, 1)}, done: true, wantReserved: []string{"mr-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			for i := range f.nodes {
				n := &f.nodes[i]
				if n.Datacenter != "dc2" {
					continue
				}
				size := state.Resources{CPU: n.CPU, MemoryMB: n.MemoryMB}
				if n.Name == "dc2-4" {
					size = tt.filler
				}
				f.allocs = append(f.allocs, Alloc{ID: "filler-" + n.Name, Job: "filler", Group: "f", Namespace: "default",
					Node: n.ID, Size: size, Live: true, Running: true})
			}
			for i, size := range tt.placed {
				f.allocs = append(f.allocs, Alloc{ID: "ph-" + string(rune('a'+i)), Job: "foreshape-reserve-rs-1", Namespace: "default",
					Group: "hold-0", Node: "id-dc2-4", Size: size, Live: true, Running: true})
			}
			for _, a := range []string{"web-0", "web-1", "web-2"} {
				f.queued(f.allocRequest(a))
			}
			f.st.Requests[0].State = state.RequestReserving
			if tt.done {
				f.st.Requests[0].State = state.RequestDone
			}
			f.st.Reservations = []state.Reservation{{ID: "rs-1", Request: "mr-1", Policy: "dc2", Locality: "dc2", Job: "foreshape-reserve-rs-1",
				State: state.ReservationHeld, Placed: at(-30 * time.Second), Expires: at(time.Hour), Chunks: tt.chunks}}
			plan := Run(f.input())
			var got []string
			for _, rs := range plan.Reserve {
				got = append(got, rs.Request)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantReserved, ",") {
				t.Fatalf("reserved for %v; want %v (decisions %+v)", got, tt.wantReserved, plan.Decisions)
			}
			for _, id := range []string{"mr-2", "mr-3"} {
				if strings.Contains(strings.Join(got, ","), id) {
					continue
				}
				rs, ok := rescoreOf(plan, id)
				if !ok || rs.State != state.RequestWaiting || !strings.Contains(rs.Reason, "reservation does not fit") {
					t.Errorf("%s: rescore %+v; want it waiting for room", id, rs)
				}
			}
		})
	}
}
