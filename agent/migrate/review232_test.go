package migrate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestQueuedHoldOfAForecastOnlyLocalityHoldsItsNodes: ops (dc3, not
// forecast_only) drains dc1, whose own policy is forecast_only, from
// 08:30; dc1 is empty, so ops's window queues its request that moves
// nothing, of dc1's node a-1, target dc1. The planner starts it by ops's
// forecast_only alone (its target is its locality only as a formality),
// so while it is queued it holds the window's nodes as any queued request
// of a window does (heldNodes, for a hold again after a purge). Read as
// planned dry by its target's forecast_only, it held nothing.
func TestQueuedHoldOfAForecastOnlyLocalityHoldsItsNodes(t *testing.T) {
	pols, diags := policies.Parse("review.hcl", []byte(`
shaping "dc1" {
  forecast_only = true
  locality {
    datacenter = "dc1"
  }
}
shaping "ops" {
  locality {
    datacenter = "dc3"
  }
  migrate {
    lead_time = "2h"
    targets   = ["dc2"]
  }
  schedule "dc1-all" {
    cron       = "30 8 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
  }
}
`))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	start := time.Date(2026, 1, 5, 8, 30, 0, 0, time.UTC)
	hold := state.MigrationRequest{ID: "mr-1", Resource: state.Resource{Kind: state.ResourceNode, ID: "id-a-1", Name: "a-1"},
		Source: "dc1", Target: "dc1", Policy: "ops", Strategy: "reschedule", Exclude: []string{"id-a-1", "id-a-2"},
		Origin: "schedule", OriginKey: fmt.Sprintf("schedule/ops/dc1-all/%d/hold/dc1", start.Unix()), Deadline: start,
		State: state.RequestPending}
	if !shape.WindowHold(&hold) {
		t.Fatal("the test needs a window's hold request")
	}
	fsm, err := state.NewFSM(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := &Coordinator{pols: pols, cfg: Config{State: fsm}, view: &viewCache{}}
	if got := c.heldNodes(start.Add(-time.Hour), hold); !slices.Equal(got, []string{"id-a-1", "id-a-2"}) {
		t.Errorf("heldNodes %q; want the window's nodes: its hold starts, ops not being forecast_only", got)
	}
	// A move of the window into a forecast_only policy's locality is
	// planned dry, and holds nothing.
	move := hold
	move.Resource, move.Target = state.Resource{Kind: state.ResourceAllocation, ID: "web-0"}, "dc1"
	move.OriginKey = fmt.Sprintf("schedule/ops/dc1-all/%d/alloc/web-0", start.Unix())
	if got := c.heldNodes(start.Add(-time.Hour), move); got != nil {
		t.Errorf("heldNodes of a move planned dry %q; want none", got)
	}
}
