package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestWindowRequestsOfARemovedSchedule: a drain schedule's window has
// queued its requests (the queue is paused: none started) and a reload
// takes the schedule out of the policy (the maintenance is called off),
// or changes its cron so that the window's start is no longer one it
// fires at (the maintenance moved).
// Once the queue runs again its requests are cancelled, saying why:
// nothing is stopped and the node is in scheduling (a drain strategy's
// node, held out while its request waited, is given back at once), and
// the cancelled requests are forgotten, their cancel decisions kept.
// Before, they ran: the work was moved off the node for a window that no
// longer comes, and the node held out of scheduling until the window's
// start.
func TestWindowRequestsOfARemovedSchedule(t *testing.T) {
	for _, tc := range []struct {
		name, window, pols, why string
	}{
		{"schedule removed", windowPolicies(""), actPolicies, `schedule "maintenance" is no longer in policy "dc1"`},
		{"policy removed", windowPolicies(""), actPolicies[strings.Index(actPolicies, `shaping "dc2"`):], `policy "dc1", whose drain schedule queued it, is no longer loaded`},
		{"schedule of a drain removed", drainStrategy(windowPolicies("")), drainStrategy(actPolicies), `schedule "maintenance" is no longer in policy "dc1"`},
		// The maintenance moved to the evening: the morning's window no
		// longer comes.
		{"cron moved", windowPolicies(""), strings.Replace(windowPolicies(""), `cron     = "30 6 * * *"`, `cron     = "30 18 * * *"`, 1), `schedule "maintenance" of policy "dc1" no longer opens a window at`},
		{"cron of a drain moved", drainStrategy(windowPolicies("")), drainStrategy(strings.Replace(windowPolicies(""), `cron     = "30 6 * * *"`, `cron     = "30 18 * * *"`, 1)), `schedule "maintenance" of policy "dc1" no longer opens a window at`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, tc.window)
			mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
			h.windowRequest(func(state.MigrationRequest) bool { return true })
			h.run(h.flatForecasts(30))
			h.holdThenPause() // a drain's queued node is held out, before the pause
			if held := h.eligibility(h.nodeID("a-")) == nomadapi.NodeSchedulingIneligible; held != strings.Contains(tc.name, "drain") {
				t.Fatalf("a-1 held out of scheduling before the reload: %v; the test needs a drain's node held, no other", held)
			}
			var queued []string
			for _, r := range h.local.FSM.Act().Requests {
				if r.Origin == "schedule" {
					queued = append(queued, r.ID)
				}
			}
			ps, diags := policies.Parse("act.hcl", []byte(tc.pols))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			h.pols = ps
			mustApply(t, h, state.SetQueuePaused{Paused: false, At: h.now(), By: "test"})
			h.passUntil(h.now().Add(3*time.Minute), nil)
			// Cancelled, their node given back, the requests of a window
			// a reload took away are forgotten (a re-added schedule queues
			// its window anew: TestReaddedScheduleQueuesItsWindowAgain);
			// their cancel decisions stay.
			if len(queued) == 0 {
				t.Fatal("no window request")
			}
			for _, id := range queued {
				if r, ok := h.local.FSM.Request(id); ok {
					t.Errorf("%s %s (%s) still in the queue; want it cancelled and forgotten", r.ID, r.State, r.Reason)
				}
				said := slices.ContainsFunc(h.local.FSM.Decisions(), func(d state.Decision) bool {
					return d.Kind == "cancel" && d.Request == id && strings.Contains(d.Reason, tc.why)
				})
				if !said {
					t.Errorf("no cancel decision of %s saying %q", id, tc.why)
				}
				if res, ok := h.local.FSM.ReservationFor(id); ok {
					t.Errorf("reservation %s of %s still %s", res.ID, id, res.State)
				}
			}
			for _, c := range h.mutating() {
				if strings.HasSuffix(c, "/stop") {
					t.Errorf("%s for a window whose schedule is gone", c)
				}
			}
			if got := h.eligibility(h.nodeID("a-")); got != nomadapi.NodeSchedulingEligible {
				t.Errorf("a-1 %s; want it left in scheduling", got)
			}
		})
	}
}
