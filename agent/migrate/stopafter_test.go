package migrate

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestMoveOfAnAllocationLostWithStopOnClientAfter: edge's group sets
// disconnect.stop_on_client_after = 40s and its node a-1 goes down while
// a request to move its allocation to dc2 is queued. Nomad marks it lost
// and places nothing for 45 s (40 s plus the kill timeout), then places a
// replacement that names no previous allocation
// (TestFidelityNodeDownStopOnClientAfter). The request starts while
// nothing is placed, stops nothing (Nomad stopped the allocation), waits,
// and settles on that replacement, in dc2 (before 9e09d12 it never saw it
// and failed after its retries).
func TestMoveOfAnAllocationLostWithStopOnClientAfter(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies)
	a := h.registerEdgeOf(1, func(tg *nomadapi.TaskGroup) {
		tg.Disconnect = &nomadapi.DisconnectStrategy{StopOnClientAfter: new(40 * time.Second)}
	})[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.setNodeDown(h.nodeID("a-"), true)
	lost := h.now()
	waited := false
	for h.now().Before(lost.Add(3 * time.Minute)) {
		h.quarterPass()
		r := h.request(id)
		if r.State == state.RequestRunning && h.now().Before(lost.Add(40*time.Second)) && r.Moves[0].Replacement == "" {
			waited = true
		}
	}
	if !waited {
		t.Error("the request never ran while Nomad had placed nothing; the check needs it to")
	}
	r := h.request(id)
	var repl *nomadapi.AllocationListStub
	for _, x := range h.allocs("edge") {
		if x.ID != a.ID && x.DesiredStatus == nomadapi.AllocDesiredStatusRun {
			repl = x
		}
	}
	if repl == nil {
		t.Fatal("Nomad placed no replacement of edge's lost allocation")
	}
	if full, _, err := h.client.Allocations().Info(repl.ID, nil); err != nil || full.PreviousAllocation != "" {
		t.Fatalf("edge's replacement: %v; want one naming no previous allocation", err)
	}
	if r.State != state.RequestDone || r.Attempts != 0 || r.Moves[0].Replacement != repl.ID || r.Moves[0].Landed != "dc2" || r.Moves[0].Error != "" {
		t.Fatalf("request 3 minutes after the loss: %s %q (attempts %d), move %+v; want done, settled on %s in dc2", r.State, r.Reason, r.Attempts, r.Moves[0], repl.ID)
	}
	if n := countStops(h, a.ID); n != 0 {
		t.Errorf("edge's lost allocation stopped %d times by the request; want never (Nomad stopped it)", n)
	}
}
