package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/policies"
)

// TestReaddedScheduleQueuesItsWindowAgain: the maintenance window's
// requests wait (reservation caps) and a-1 is out of scheduling from
// 06:10; at 06:15 a reload takes the schedule out of the policy (its
// requests are cancelled, a-1 given back at once), and at 06:18 another
// puts it back. The cancelled requests were kept and their origin keys
// blocked the window's requests (the state refuses a second request of
// an origin key, the planner queues none it holds): the re-added window
// queued nothing, a-1 stayed eligible through it and its work stayed
// where it was. Now the cancelled requests of a window a reload took away
// are forgotten once they owe nothing, and the re-added window is queued,
// its node taken out and its work moved as for a new schedule.
func TestReaddedScheduleQueuesItsWindowAgain(t *testing.T) {
	for _, tc := range []struct{ name, pols string }{
		{"reschedule", cappedWindowPolicies()},
		{"drain", drainStrategy(cappedWindowPolicies())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, tc.pols)
			node := h.nodeID("a-")
			h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
			if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
				t.Fatalf("a-1 %s at %s while the window's requests wait; the test needs it out", got, h.now().Format("15:04"))
			}
			with := h.pols
			without := strings.Replace(actPolicies, "max_cpu    = 8000", "max_cpu    = 500", 1)
			if tc.name == "drain" {
				without = drainStrategy(without)
			}
			ps, diags := policies.Parse("act.hcl", []byte(without))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			h.pols = ps
			h.passUntil(time.Date(2026, 1, 5, 6, 17, 0, 0, time.UTC), nil)
			if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
				t.Fatalf("a-1 %s after the schedule was removed; the test needs it given back", got)
			}
			cancelled := 0
			for _, d := range h.local.FSM.Decisions() {
				if d.Kind == shape.KindCancel && strings.Contains(d.Reason, `schedule "maintenance" is no longer in policy "dc1"`) {
					cancelled++
				}
			}
			if cancelled == 0 {
				t.Fatalf("no cancel decision for the removed schedule's requests; decisions %+v", h.local.FSM.Decisions())
			}
			h.pols = with
			readded := h.now().Format("15:04")
			spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), node)[node]
			if want := []string{readded + "–07:30"}; !slices.Equal(spans, want) {
				t.Errorf("a-1 out of scheduling %q after the re-add at %s; want %q", spans, readded, want)
			}
			var live []string
			for _, x := range h.local.FSM.Act().Requests {
				if x.Origin == "schedule" && x.State != state.RequestCancelled && !x.Started.IsZero() {
					live = append(live, x.ID+" "+string(x.State))
				}
			}
			if len(live) == 0 {
				t.Errorf("no request of the re-added window started; requests %+v", h.local.FSM.Act().Requests)
			}
			on := 0
			for _, a := range h.allocs("web") {
				if a.NodeID == node && a.ClientStatus == nomadapi.AllocClientStatusRunning {
					on++
				}
			}
			if on != 0 {
				t.Errorf("%d web allocations still run on a-1 after the re-added window; want them moved", on)
			}
		})
	}
}

// TestReaddedScheduleAfterItsMovesQueuesItsWindowAgain: dc1's maintenance
// window (06:30–07:30) moved web's allocations to dc2 by 06:14; then
// a reload takes the schedule out of the policy (dc1's nodes given back
// at once), a job, late, is placed on a-2, and another reload puts the
// schedule back. A window a reload took away was forgotten early only
// when none of its requests had moved anything (5e028aa): here its done
// requests kept it, and with them its intents (its nodes taken out,
// given back): the re-added window moved nothing, late ran on in dc1 and
// dc1's nodes stayed in scheduling through it. Now the re-added window is
// queued as a new one: its nodes go out, late is moved, and the nodes
// come back at its end.
func TestReaddedScheduleAfterItsMovesQueuesItsWindowAgain(t *testing.T) {
	scenario := strings.Replace(actScenario, "  datacenter = \"dc1\"\n  count      = 1\n", "  datacenter = \"dc1\"\n  count      = 2\n", 1)
	h := newHarness(t, scenario, windowPolicies(""))
	with := h.pols
	a1, a2 := h.nodeID("a-1"), h.nodeID("a-2")
	h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
	done := 0
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && x.State != state.RequestDone {
			t.Fatalf("%s %s at 06:14; the test needs every move of the window done", x.ID, x.State)
		}
		done++
	}
	if done == 0 {
		t.Fatal("no request of the window by 06:14")
	}
	ps, diags := policies.Parse("act.hcl", []byte(actPolicies))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	h.pols = ps
	h.passUntil(time.Date(2026, 1, 5, 6, 17, 0, 0, time.UTC), nil)
	if h.eligibility(a1) != nomadapi.NodeSchedulingEligible || h.eligibility(a2) != nomadapi.NodeSchedulingEligible {
		t.Fatalf("a-1 %s, a-2 %s after the schedule was removed; the test needs them given back", h.eligibility(a1), h.eligibility(a2))
	}
	h.registerOn("late", a2)
	h.pols = with
	h.passUntil(time.Date(2026, 1, 5, 7, 20, 0, 0, time.UTC), nil)
	if h.eligibility(a1) != nomadapi.NodeSchedulingIneligible || h.eligibility(a2) != nomadapi.NodeSchedulingIneligible {
		t.Errorf("a-1 %s, a-2 %s at 07:20 in the re-added window; want both out of scheduling", h.eligibility(a1), h.eligibility(a2))
	}
	for _, a := range h.allocs("late") {
		if (a.NodeID == a1 || a.NodeID == a2) && a.ClientStatus == nomadapi.AllocClientStatusRunning {
			t.Errorf("late's %s runs in dc1 at 07:20 in the re-added window; want it moved", a.ID)
		}
	}
	h.passUntil(time.Date(2026, 1, 5, 7, 35, 0, 0, time.UTC), nil)
	if h.eligibility(a1) != nomadapi.NodeSchedulingEligible || h.eligibility(a2) != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s, a-2 %s after the re-added window; want both given back; decisions %q", h.eligibility(a1), h.eligibility(a2), h.decisionsSaying("", "a-1"))
	}
}
