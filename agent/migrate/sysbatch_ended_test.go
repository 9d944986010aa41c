package migrate

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestDrainRequestSysbatchEndedWhileItDrains: as
// TestDrainRequestLeavesSysbatchToNomad, but the sysbatch allocation ends
// on its own after Nomad's drain began and before web's replacements run.
// Nomad's drain never marks it and does not see it end (its drainer
// watches no sysbatch job): the drain goes on until its deadline
// (measured on a real Nomad: TestFidelitySysbatchDrain). The request ends
// done, saying so; before, it waited for that drain, was retried at its
// settle timeout (10 minutes), and its second attempt, setting the drain
// again, ended it ("node a-1 held nothing to move").
func TestDrainRequestSysbatchEndedWhileItDrains(t *testing.T) {
	h := newHarness(t, actScenario, drainStrategy(actPolicies))
	node := h.nodeID("a-")
	// Ends 2m22s after it starts: after the request's first pass drains
	// a-1, before the pass that finds web's replacements running.
	once := h.registerOnce(142 * time.Second)
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(20*time.Minute), nil)
	r := h.request(id)
	n, _, err := h.client.Nodes().Info(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := h.client.Allocations().Info(once.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ClientStatus != nomadapi.AllocClientStatusComplete || n.LastDrain == nil || time.Unix(0, a.ModifyTime).Before(n.LastDrain.StartedAt) {
		t.Fatalf("once's allocation %s, modified %s, the drain %+v: the check needs it to end after the drain began", a.ClientStatus, time.Unix(0, a.ModifyTime).UTC(), n.LastDrain)
	}
	if r.State != state.RequestDone || r.Attempts != 0 || !strings.Contains(r.Reason,
		"Nomad's drain of node a-1 goes on; sysbatch allocation once.task[0] ended while it drained, which Nomad's drain does not watch: it completes at its deadline") {
		t.Fatalf("request %s (attempts %d): %q; want done at its first attempt, saying Nomad's drain goes on until its deadline", r.State, r.Attempts, r.Reason)
	}
	if n.DrainStrategy == nil {
		t.Errorf("when the request is done: no drain of a-1; want Nomad's drain on until its deadline")
	}
}

// TestDrainRequestSysbatchEndedBefore: a sysbatch allocation that ended
// before the drain began holds nothing back: Nomad's drain completes, and
// the request says nothing of it.
func TestDrainRequestSysbatchEndedBefore(t *testing.T) {
	h := newHarness(t, actScenario, drainStrategy(actPolicies))
	node := h.nodeID("a-")
	h.registerOnce(40 * time.Second)
	h.step(time.Minute)
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(20*time.Minute), nil)
	r := h.request(id)
	if r.State != state.RequestDone || r.Attempts != 0 || strings.Contains(r.Reason, "sysbatch") {
		t.Fatalf("request %s (attempts %d): %q; want done, saying nothing of the sysbatch allocation", r.State, r.Attempts, r.Reason)
	}
	n, _, err := h.client.Nodes().Info(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.DrainStrategy != nil {
		t.Errorf("Nomad's drain of a-1 %+v; want it complete", n.DrainStrategy)
	}
}
