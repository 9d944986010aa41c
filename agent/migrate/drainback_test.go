package migrate

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestDrainADisconnectedNodeBackBeforeNomadMarks: a drain-strategy
// request of a-1, disconnected before it starts, whose two edge
// allocations Nomad's drain marks to migrate one at a time. Nomad
// replaces both at their reschedule delay, so the request ends done, yet
// its drain has marked only one: the reason says so, and what Nomad does
// should the node come back first (before, it said nothing of it, and the
// request named as the unmarked one's replacement an allocation Nomad then
// stopped). a-1 comes back: Nomad keeps the unmarked original there and
// stops its replacement ("alloc not needed due to disconnected client
// reconnect"), and its drain then moves it again; edge ends with two
// allocations running off a-1.
func TestDrainADisconnectedNodeBackBeforeNomadMarks(t *testing.T) {
	h := newHarness(t, actScenario, drainStrategy(actPolicies))
	node := h.nodeID("a-")
	edge := h.registerSlowEdge()
	h.setNodeDown(node, true)
	h.step(10 * time.Second)
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		h.quarterPass()
		if h.request(id).State.Terminal() {
			break
		}
	}
	r := h.request(id)
	if r.State != state.RequestDone || !strings.Contains(r.Reason, "its drain has not marked 1 of the 2 allocations to migrate yet: "+
		"should the node come back first, Nomad keeps it there, stops its replacement and its drain then moves it again") {
		t.Fatalf("request %s: %q; want done, saying Nomad's drain has not marked one of the two", r.State, r.Reason)
	}

	h.setNodeDown(node, false)
	h.passUntil(h.now().Add(20*time.Minute), nil)
	stoppedByReconnect, running := 0, 0
	for _, m := range r.Moves {
		repl, _, err := h.client.Allocations().Info(m.Replacement, nil)
		if err != nil {
			t.Fatal(err)
		}
		if repl.DesiredDescription == "alloc not needed due to disconnected client reconnect" {
			stoppedByReconnect++
		}
	}
	for _, a := range h.allocs("edge") {
		if a.DesiredStatus == nomadapi.AllocDesiredStatusRun && a.ClientStatus == nomadapi.AllocClientStatusRunning {
			if a.NodeID == node {
				t.Errorf("edge's %s still runs on a-1 20 minutes after it came back", a.ID[:8])
			}
			running++
		}
	}
	if stoppedByReconnect != 1 || running != 2 {
		t.Errorf("20 minutes after a-1 came back: %d of the request's replacements stopped by the reconnect, %d of edge's allocations running; want 1 and 2",
			stoppedByReconnect, running)
	}
	for _, a := range edge {
		if got, _, err := h.client.Allocations().Info(a.ID, nil); err != nil || got.DesiredStatus != nomadapi.AllocDesiredStatusStop {
			t.Errorf("edge's original %s 20 minutes after a-1 came back: %v; want stopped", a.ID[:8], err)
		}
	}
}
