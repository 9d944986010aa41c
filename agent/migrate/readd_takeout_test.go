package migrate

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// lowJob is a service job of one allocation, of a lower priority than
// web's (40), that dc1 and dc2 may run, with an affinity to dc1.
const lowJob = `
job "low" {
  type        = "service"
  priority    = 40
  datacenters = ["dc1", "dc2"]

  affinity {
    attribute = "node.datacenter"
    value     = "dc1"
    weight    = 100
  }

  group "batch" {
    count  = 1
    cpu    = 1000
    memory = 1024
  }
}
`

// TestReaddedScheduleMovesTheKeptRequestsWork: dc1 (a-1, a-2) has a
// maintenance window 06:30–07:30, max_parallel 1. While one of its moves
// runs, a reload takes the schedule out of the policy, cancelling the
// request that waits, and another puts it back at once. That request
// names an intent of a node of the window:
//   - "reschedule": low's and web's allocations run on a-1; the window
//     queues low's move first, its queueing takes a-1 and a-2 out in
//     low's name, and web's, of the higher priority, starts first;
//   - "drain": web runs an allocation on each node; the window queues a
//     request per node, each taking its own node out, and one of them
//     starts first.
//
// The window's give-back reads that intent through the cancelled
// request, so the queue keeps it (readded) while the window's other
// cancelled requests are forgotten and their work queued again; kept,
// its origin key was taken, the planner queued no request of its work
// again, and that work ran on in dc1 through the re-added window. Now it
// is queued again under a key of its own, in the same window, and moved;
// the window's nodes stay out until its end and are given back then.
func TestReaddedScheduleMovesTheKeptRequestsWork(t *testing.T) {
	twoNodes := strings.Replace(actScenario, "  datacenter = \"dc1\"\n  count      = 1\n", "  datacenter = \"dc1\"\n  count      = 2\n", 1)
	for _, tc := range []struct {
		name, scenario string
		strategy       func(string) string
	}{
		{"reschedule", strings.Replace(twoNodes, "    count  = 2\n", "    count  = 1\n", 1) + lowJob, func(s string) string { return s }},
		{"drain", twoNodes, drainStrategy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.scenario, tc.strategy(windowPolicies("")))
			with := h.pols
			a1, a2 := h.nodeID("a-1"), h.nodeID("a-2")
			dc1 := func() []string {
				var on []string
				for _, job := range []string{"web", "low"} {
					for _, a := range h.allocs(job) {
						if (a.NodeID == a1 || a.NodeID == a2) && a.ClientStatus == nomadapi.AllocClientStatusRunning {
							on = append(on, job+" "+a.ID[:8])
						}
					}
				}
				return on
			}
			if on := dc1(); len(on) != 2 {
				t.Fatalf("%q run in dc1; the test needs two allocations there", on)
			}
			split := func() bool {
				run, queued := 0, 0
				for _, x := range h.local.FSM.Act().Requests {
					switch {
					case x.Origin != "schedule":
					case x.State == state.RequestRunning:
						run++
					case x.State.Queued():
						queued++
					}
				}
				return run > 0 && queued > 0
			}
			h.passUntil(time.Date(2026, 1, 5, 6, 9, 0, 0, time.UTC), nil)
			for !split() {
				if h.now().After(time.Date(2026, 1, 5, 6, 20, 0, 0, time.UTC)) {
					t.Fatalf("no move of the window runs while another waits by 06:20; the test needs one; requests %+v", h.local.FSM.Act().Requests)
				}
				h.run(h.flatForecasts(30))
				h.step(5 * time.Second)
				if err := h.c.Follow(h.ctx, h.now()); err != nil {
					t.Fatal(err)
				}
			}
			ps, diags := policies.Parse("act.hcl", []byte(tc.strategy(actPolicies)))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			h.pols = ps
			h.run(h.flatForecasts(30))
			h.step(5 * time.Second)
			if err := h.c.Follow(h.ctx, h.now()); err != nil {
				t.Fatal(err)
			}
			var kept []state.MigrationRequest
			for _, x := range h.local.FSM.Act().Requests {
				if shape.ReloadCancelled(&x) {
					kept = append(kept, x)
				}
			}
			if len(kept) != 1 {
				t.Fatalf("%d requests cancelled by the reload; the test needs one; requests %+v", len(kept), h.local.FSM.Act().Requests)
			}
			named := false
			for _, in := range h.local.FSM.Intents() {
				named = named || in.Kind == state.IntentNodeEligibility && in.Request == kept[0].ID
			}
			if !named {
				t.Fatalf("no intent of a node names %s, which the reload cancelled; the test needs one; intents %+v", kept[0].ID, h.local.FSM.Intents())
			}
			h.pols = with
			h.passUntil(time.Date(2026, 1, 5, 7, 20, 0, 0, time.UTC), nil)
			if on := dc1(); len(on) != 0 {
				t.Errorf("%q run in dc1 at 07:20, in the re-added window; want them moved; requests %+v", on, h.local.FSM.Act().Requests)
			}
			var again []string
			for _, x := range h.local.FSM.Act().Requests {
				if x.Resource.Key() == kept[0].Resource.Key() && x.ID != kept[0].ID {
					again = append(again, string(x.State)+" "+windowKey(x))
				}
			}
			if want := []string{"done " + windowKey(kept[0])}; strings.Join(again, ",") != strings.Join(want, ",") {
				t.Errorf("%s's work queued again as %q; want %q", kept[0].ID, again, want)
			}
			if _, ok := h.local.FSM.Request(kept[0].ID); !ok {
				t.Errorf("%s forgotten in the re-added window; the window's give-back reads its intents", kept[0].ID)
			}
			if h.eligibility(a1) != nomadapi.NodeSchedulingIneligible || h.eligibility(a2) != nomadapi.NodeSchedulingIneligible {
				t.Errorf("a-1 %s, a-2 %s at 07:20 in the re-added window; want both out of scheduling", h.eligibility(a1), h.eligibility(a2))
			}
			h.passUntil(time.Date(2026, 1, 5, 7, 35, 0, 0, time.UTC), nil)
			if h.eligibility(a1) != nomadapi.NodeSchedulingEligible || h.eligibility(a2) != nomadapi.NodeSchedulingEligible {
				t.Errorf("a-1 %s, a-2 %s after the re-added window; want both given back", h.eligibility(a1), h.eligibility(a2))
			}
		})
	}
}

// TestAgainKeyReadsAsItsWindow: the origin key of work queued again in
// place of a kept request (the kept one's followed by /again/ and its ID)
// reads as the same window's wherever the coordinator reads a window's
// keys: windowKey, by which the window's give-back, its call-off and its
// late joiners go, its name in decisions, and its end.
func TestAgainKeyReadsAsItsWindow(t *testing.T) {
	ps, diags := policies.Parse("act.hcl", []byte(windowPolicies("")))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	c := &Coordinator{pols: ps}
	start := time.Date(2026, 1, 5, 6, 30, 0, 0, time.UTC)
	kept := state.MigrationRequest{ID: "mr-1", Policy: "dc1", Origin: "schedule", Deadline: start,
		OriginKey: "schedule/dc1/maintenance/1767594600/allocation/5b1b7bc5"}
	again := kept
	again.ID, again.OriginKey = "mr-3", kept.OriginKey+"/again/mr-1"
	if windowKey(again) != windowKey(kept) || windowKey(kept) != "window/dc1/maintenance/1767594600" {
		t.Errorf("windowKey %q, kept %q; want both window/dc1/maintenance/1767594600", windowKey(again), windowKey(kept))
	}
	if windowName(again) != windowName(kept) || windowName(kept) != "dc1/maintenance from 06:30 UTC" {
		t.Errorf("windowName %q, kept %q; want both dc1/maintenance from 06:30 UTC", windowName(again), windowName(kept))
	}
	end, ok := c.windowEnd(again)
	if want := start.Add(time.Hour); !ok || !end.Equal(want) {
		t.Errorf("windowEnd = %v, %v; want %v", end, ok, want)
	}
}
