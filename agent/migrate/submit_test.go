package migrate

import (
	"testing"
	"time"
)

// TestSubmittedPriority: a request's priority is the one given, else the
// highest of the jobs it moves, and 0 when it moves none (a whole-node
// request of a node with no allocations), as docs/api.md says.
func TestSubmittedPriority(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	ids, err := h.sim.AddNodes("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	h.step(30 * time.Second)
	empty := ids[0]
	web := h.allocs("web")
	tests := []struct {
		name string
		sub  Submission
		want int
	}{
		{name: "the job's", sub: Submission{Allocation: web[0].ID, Target: "dc2"}, want: 60},
		{name: "the one given", sub: Submission{Allocation: web[1].ID, Target: "dc2", Priority: 70}, want: 70},
		{name: "an empty node's", sub: Submission{Node: empty, Target: "dc2"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, tt.sub)
			if err != nil {
				t.Fatal(err)
			}
			r := h.request(id)
			if r.Priority != tt.want {
				t.Errorf("priority %d; want %d", r.Priority, tt.want)
			}
			if tt.sub.Node != "" && len(r.Moves) != 0 {
				t.Errorf("moves %v; want none on an empty node", r.Moves)
			}
		})
	}
}
