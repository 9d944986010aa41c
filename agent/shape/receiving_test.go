package shape

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// receivingFixture is baseFixture with 2000 MHz / 2048 MiB of work on each
// dc2 node, dc2's p90 CPU flat at cpu, and dc2-4 as node sets it.
func receivingFixture(t *testing.T, cpu float64, node func(n *Node, f *fixture)) *fixture {
	f := baseFixture(t, "reschedule")
	for i := range f.nodes {
		n := &f.nodes[i]
		if n.Datacenter != "dc2" {
			continue
		}
		f.allocs = append(f.allocs, Alloc{ID: "filler-" + n.Name, Job: "filler", Group: "f", Namespace: "default", Node: n.ID,
			Size: state.Resources{CPU: 2000, MemoryMB: 2048}, Live: true, Running: true})
	}
	f.setFrom("dc2", "cpu", 0, cpu)
	if node != nil {
		for i := range f.nodes {
			if f.nodes[i].Name == "dc2-4" {
				node(&f.nodes[i], f)
			}
		}
	}
	return f
}

// spreadOff adds a spread off dc2-4 in state st, finished ago before now
// when it is done.
func spreadOff(st state.RequestState, ago time.Duration) func(*fixture) {
	return func(f *fixture) {
		r := state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceAllocation, ID: "filler-dc2-4", Namespace: "default", Job: "filler", Group: "f"},
			Source: "dc2", Target: "dc2", Policy: "dc2", Strategy: "reschedule", Origin: "planner", State: st, Started: f.now.Add(-ago - time.Minute),
			Moves: []state.Move{{Alloc: "filler-dc2-4", Namespace: "default", Job: "filler", Group: "f", Node: "id-dc2-4",
				Size: state.Resources{CPU: 2000, MemoryMB: 2048}}}}
		if st.Terminal() {
			r.Finished = f.now.Add(-ago)
		}
		f.queued(r)
	}
}

func ineligible(n *Node, _ *fixture) { n.Eligible = false }
func draining(n *Node, _ *fixture)   { n.Eligible, n.Draining = false, true }
func emptied(n *Node, f *fixture) {
	n.Eligible = false
	for i := range f.allocs {
		if f.allocs[i].Node == n.ID {
			f.allocs[i].Live, f.allocs[i].Running = false, false
		}
	}
}

// Nomad places nothing new on an ineligible or draining node, so its room
// can take neither a move's replacement nor a placeholder: the room of a
// move's target, and the need to scale, are read on the nodes that take
// new work, with the part of the locality's demand that runs on them
// (read in proportion to what allocations hold). Counted in, a cordoned
// node's empty room let a move into a full target and kept a locality
// whose eligible nodes are over the line from scaling. The work a cordoned
// node runs stays there, so it takes none of the others' room (a node
// foreshape itself holds out of scheduling while a spread or a drain
// window moves work off it must not make its locality look fuller than
// it is, and one a spread holds out for minutes is read as taking work
// until SpreadCordonLag after the spread ends, when the coordinator has
// given it back); a node an operator drains moves its work onto them; one
// a foreshape request drains counts as that request's arrival, once.
func TestRoomIsOnNodesThatTakeNewWork(t *testing.T) {
	t.Run("a move's target", func(t *testing.T) {
		tests := []struct {
			name string
			cpu  float64
			node func(*Node, *fixture)
			// foreshapeDrains adds a running drain of dc2-4 into the rest
			// of dc2.
			foreshapeDrains bool
			// noReserve turns dc2's reservations off: the forecast's check
			// alone decides whether the move starts.
			noReserve bool
			// want is "" for a move that fits, else what its reason says.
			want string
		}{
			// 58% + 1000 of 16000 MHz: 64%.
			{name: "every node eligible", cpu: 58},
			// 58% of 16000 MHz is 9280 on the other three nodes (77%) +
			// 1000 of 12000 (8%): over the 80% line.
			{name: "an ineligible empty node's room is not room", cpu: 58, node: emptied,
				want: "p90 cpu demand 77% + incoming 8% + held 0% would cross the 80% line in dc2 at 06:00, on the 3 of its 4 ready nodes that take new work"},
			// Its work stays on it: three quarters of 9280 on the rest
			// (58%) + 8%.
			{name: "an ineligible node keeps its work", cpu: 58, node: ineligible},
			// Its work is being placed on the rest: 77% + 8%.
			{name: "an operator's drain moves its work onto the rest", cpu: 58, node: draining,
				want: "would cross the 80% line in dc2"},
			// dc2-4's work counts once, as the drain's arrival: 45% of
			// the rest + 2000 of 12000 (17%) + 8%: 70%.
			{name: "foreshape's drain counts its work once", cpu: 45, node: draining, foreshapeDrains: true},
			{name: "no node takes new work", cpu: 40, noReserve: true, node: func(n *Node, f *fixture) {
				for i := range f.nodes {
					if f.nodes[i].Datacenter == "dc2" {
						f.nodes[i].Eligible = false
					}
				}
			}, want: "target dc2 has no node that takes new work: its 4 ready nodes are ineligible or draining"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := receivingFixture(t, tt.cpu, tt.node)
				if tt.noReserve {
					for _, pol := range f.pols {
						pol.Reserve.Enabled = false
					}
				}
				if tt.foreshapeDrains {
					f.queued(state.MigrationRequest{Resource: state.Resource{Kind: state.ResourceNode, ID: "id-dc2-4", Name: "dc2-4"},
						Source: "dc2", Target: "dc2", Policy: "dc2", Strategy: "drain", Origin: "schedule", State: state.RequestRunning, Started: at(0),
						Moves: []state.Move{{Alloc: "filler-dc2-4", Namespace: "default", Job: "filler", Group: "f", Node: "id-dc2-4",
							Size: state.Resources{CPU: 2000, MemoryMB: 2048}}}})
				}
				f.queued(f.allocRequest("web-0"))
				id := f.st.Requests[len(f.st.Requests)-1].ID
				plan := Run(f.input())
				rs, _ := rescoreOf(plan, id)
				congested := strings.Contains(rs.Reason, "target congested")
				if tt.want == "" {
					if congested || len(plan.Scale) > 0 {
						t.Fatalf("%s: %q, scale %+v; want it to fit", id, rs.Reason, plan.Scale)
					}
					return
				}
				if !congested || !strings.Contains(rs.Reason, tt.want) || len(plan.Start) > 0 {
					t.Fatalf("%s: %q (started %v); want it waiting, congested: %q", id, rs.Reason, startIDs(plan), tt.want)
				}
			})
		}
	})
	t.Run("a hotspot", func(t *testing.T) {
		tests := []struct {
			name  string
			cpu   float64
			node  func(*Node, *fixture)
			setup func(*fixture)
			want  string // the scale's reason; "" for none
		}{
			{name: "every node eligible", cpu: 65},
			// 65% of 16000 MHz on 12000: 87%.
			{name: "an ineligible empty node's room is not room", cpu: 65, node: emptied,
				want: "hotspot: p90 cpu 87% crosses the 80% line in dc2 at 06:00 and no request relieves it (on the 3 of its 4 ready nodes that take new work"},
			{name: "an ineligible node keeps its work", cpu: 65, node: ineligible},
			{name: "an operator's drain moves its work onto the rest", cpu: 65, node: draining, want: "hotspot: p90 cpu 87%"},
			// The coordinator holds dc2-4 out while a spread moves its
			// work off it, and gives it back once the spread has ended.
			{name: "a running spread's cordon", cpu: 65, node: emptied, setup: spreadOff(state.RequestRunning, 0)},
			{name: "a spread that ended a pass ago", cpu: 65, node: emptied, setup: spreadOff(state.RequestDone, time.Minute)},
			{name: "out of scheduling long after its spread", cpu: 65, node: emptied, setup: spreadOff(state.RequestDone, time.Hour),
				want: "hotspot: p90 cpu 87%"},
			// Taken out of scheduling as a whole: nodes added would not
			// be what that asked for.
			{name: "no node takes new work", cpu: 90, node: func(n *Node, f *fixture) {
				for i := range f.nodes {
					if f.nodes[i].Datacenter == "dc2" {
						f.nodes[i].Eligible = false
					}
				}
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := receivingFixture(t, tt.cpu, tt.node)
				if tt.setup != nil {
					tt.setup(f)
				}
				plan := Run(f.input())
				if tt.want == "" {
					if len(plan.Scale) > 0 {
						t.Fatalf("scale %+v; want none", plan.Scale)
					}
					return
				}
				if len(plan.Scale) != 1 || plan.Scale[0].Locality != "dc2" || !strings.Contains(plan.Scale[0].Reason, tt.want) {
					t.Fatalf("scale %+v; want one for dc2: %q", plan.Scale, tt.want)
				}
			})
		}
	})
}
