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

// TestReaddedScheduleWhileAMoveRunsMovesAllItsWork: dc1's maintenance
// window (06:30–07:30) queues a move for each of web's two allocations on
// a-1 and a-2, max_parallel 1; while the first runs, a reload takes the
// schedule out of the policy (the waiting request is cancelled, the
// running move goes on), and another puts it back before the window ends:
//   - at once, while the move still runs ("while it runs");
//   - after the move ended and a follower pass gave the window's nodes
//     back, before the planner's next pass ("after its give-back").
//
// The cancelled request kept its origin key, and the planner queued no
// request of that allocation again: it ran in dc1 through the re-added
// window (and, given back, a-1 and a-2 stayed in scheduling). Now every
// allocation of the window is moved or queued to move, and dc1's nodes
// are out of scheduling, by 07:20.
func TestReaddedScheduleWhileAMoveRunsMovesAllItsWork(t *testing.T) {
	scenario := strings.Replace(actScenario, "  datacenter = \"dc1\"\n  count      = 1\n", "  datacenter = \"dc1\"\n  count      = 2\n", 1)
	for _, tc := range []struct {
		name     string
		giveBack bool
	}{{"while it runs", false}, {"after its give-back", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, scenario, windowPolicies(""))
			with := h.pols
			a1, a2 := h.nodeID("a-1"), h.nodeID("a-2")
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
			ps, diags := policies.Parse("act.hcl", []byte(actPolicies))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			h.pols = ps
			h.run(h.flatForecasts(30))
			h.step(5 * time.Second)
			if err := h.c.Follow(h.ctx, h.now()); err != nil {
				t.Fatal(err)
			}
			cancelled := 0
			for _, x := range h.local.FSM.Act().Requests {
				if shape.ReloadCancelled(&x) {
					cancelled++
				}
			}
			if cancelled == 0 {
				t.Fatalf("no request cancelled by the reload; requests %+v", h.local.FSM.Act().Requests)
			}
			running := false
			for _, x := range h.local.FSM.Act().Requests {
				running = running || x.Origin == "schedule" && x.State == state.RequestRunning
			}
			if !running {
				t.Fatalf("no move of the window runs after the reload; the test needs one; requests %+v", h.local.FSM.Act().Requests)
			}
			if tc.giveBack {
				// Follower passes only: the move ends and the window's
				// nodes are given back; the planner's pass, which would
				// forget the window while it is away, does not come.
				for i := 0; h.eligibility(a1) != nomadapi.NodeSchedulingEligible || h.eligibility(a2) != nomadapi.NodeSchedulingEligible; i++ {
					if i == 60 {
						t.Fatalf("a-1 %s, a-2 %s five minutes after the reload; the test needs them given back", h.eligibility(a1), h.eligibility(a2))
					}
					h.step(5 * time.Second)
					if err := h.c.Follow(h.ctx, h.now()); err != nil {
						t.Fatal(err)
					}
				}
			}
			h.pols = with
			h.passUntil(time.Date(2026, 1, 5, 7, 20, 0, 0, time.UTC), nil)
			moving := map[string]string{}
			for _, x := range h.local.FSM.Act().Requests {
				if x.Origin == "schedule" && x.State != state.RequestCancelled && x.State != state.RequestFailed {
					for _, m := range x.Moves {
						moving[m.Alloc] = x.ID + " " + string(x.State)
					}
				}
			}
			for _, a := range h.allocs("web") {
				if (a.NodeID == a1 || a.NodeID == a2) && a.ClientStatus == nomadapi.AllocClientStatusRunning && moving[a.ID] == "" {
					t.Errorf("web's %s runs in dc1 at 07:20, in the re-added window, and no request of the window moves it; requests %+v", a.ID[:8], h.local.FSM.Act().Requests)
				}
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
