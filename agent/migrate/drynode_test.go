package migrate

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// dryTargetScenario is actScenario with a third datacenter, dc3, of one
// empty node.
const dryTargetScenario = actScenario + `
datacenter "dc3" {
  bandwidth = 100
}

nodes "c" {
  datacenter = "dc3"
  count      = 1
  node_class = "web"
  cpu        = 4000
  memory     = 8192
  iops       = 1000
}
`

// TestWholeNodeRequestPlannedDryHoldsNoGiveBack: dc1's maintenance window
// (06:30–07:30) holds a-1 out of scheduling; at 06:40 an operator asks to
// move a-1 to dc3, whose policy is forecast_only. That request is planned
// dry: it never starts, and takes nothing out (holdNodes), as a window's
// request planned dry does not. The window's end gives a-1 back at 07:30
// all the same. Before, the queued request, which waits for good, held
// the give-back back for as long as it stayed in the queue (heldByRequest
// read any queued whole-node request of the node as holding it).
func TestWholeNodeRequestPlannedDryHoldsNoGiveBack(t *testing.T) {
	pols := windowPolicies("") + `
shaping "dc3" {
  forecast_only = true
  locality {
    datacenter = "dc3"
  }
}
`
	h := newHarness(t, dryTargetScenario, pols)
	node := h.nodeID("a-")
	w := h.windowRequest(func(state.MigrationRequest) bool { return true })
	end := h.windowEnd(w)
	h.passUntil(time.Date(2026, 1, 5, 6, 40, 0, 0, time.UTC), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s at 06:40, inside its window: the test needs the window to hold it", got)
	}
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc3", Reason: "test: to the forecast_only dc3"})
	if err != nil {
		t.Fatal(err)
	}
	if !h.c.plannedDryNow()(h.request(id)) {
		t.Fatalf("%s is not planned dry: the test needs it so", id)
	}
	var backAt string
	h.passUntil(end.Add(5*time.Minute), func() {
		if backAt == "" && h.eligibility(node) == nomadapi.NodeSchedulingEligible {
			backAt = h.now().Format("15:04")
		}
	})
	if got := h.request(id); !got.State.Queued() {
		t.Fatalf("%s %s (%s): the test needs it queued, planned dry, through the window's end", id, got.State, got.Reason)
	}
	if want := end.Format("15:04"); backAt != want {
		t.Errorf("a-1 back in scheduling at %q; want %s, the window's end: %s, planned dry, holds nothing; decisions %+v",
			backAt, want, id, h.local.FSM.Decisions())
	}
}

// TestWholeNodeRequestPlannedDryHoldsNothingAgainAfterAPurge: as in
// TestWholeNodeRequestPlannedDryHoldsNoGiveBack, an operator's request to
// move a-1 to the forecast_only dc3 waits in the queue, planned dry; an
// operator purges a-1 just before 07:30, while the window holds it, so the window's
// give-back at 07:30 finds nothing to give back, and a-1's client
// registers it again out of scheduling, as it last heard. foreshape gives
// it back then (giveBackAgainAll), the dry request holding nothing.
// Before, the request was read as a hold of foreshape's (heldNodes), and
// a-1 stayed out of scheduling for good.
func TestWholeNodeRequestPlannedDryHoldsNothingAgainAfterAPurge(t *testing.T) {
	pols := windowPolicies("") + `
shaping "dc3" {
  forecast_only = true
  locality {
    datacenter = "dc3"
  }
}
`
	h := newHarness(t, dryTargetScenario+"\nreregister = \"2m\"\n", pols)
	node := h.nodeID("a-")
	w := h.windowRequest(func(state.MigrationRequest) bool { return true })
	end := h.windowEnd(w)
	h.passUntil(time.Date(2026, 1, 5, 6, 40, 0, 0, time.UTC), nil)
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc3", Reason: "test: to the forecast_only dc3"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(end.Add(-20*time.Second), nil)
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s before its window's end: the test needs the window to hold it", got)
	}
	h.purgeNode(node)
	h.passUntil(end.Add(20*time.Second), nil)
	if got := h.decisionsSaying("", "a-1 was purged from Nomad: nothing to give back"); len(got) != 1 {
		t.Fatalf("decisions on giving a-1 back while purged: %v; want one", got)
	}
	h.registeredAgain(node, "a-1")
	h.passUntil(h.now().Add(5*time.Minute), nil)
	if got := h.request(id); !got.State.Queued() {
		t.Fatalf("%s %s (%s): the test needs it queued, planned dry, throughout", id, got.State, got.Reason)
	}
	if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s five minutes after it registered again: %s, planned dry, holds nothing; decisions %+v",
			got, id, h.local.FSM.Decisions())
	}
}
