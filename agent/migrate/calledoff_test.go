package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
)

// TestWindowCalledOffByAnOperatorGivesItsNodesBack: dc1 has a-1 and a-2;
// an operator cordoned a-2 before the maintenance window. The window's
// requests wait (reservation caps) and a-1 is out of scheduling from
// 06:10; at 06:14 an operator cancels every one of them (`queue cancel`).
// a-1 stayed out of scheduling until the window's end at 07:30 for a
// window that moved nothing. Now a-1 goes back at the next pass, with a
// decision saying the window was called off; a-2, the operator's cordon,
// stays out; a job placed on a-1 after it is back is not queued to move
// in that window (the operator said no; a wait decision says so), and
// neither is anything else of it: a-1 stays in scheduling through the
// window and dc1's work where it is.
func TestWindowCalledOffByAnOperatorGivesItsNodesBack(t *testing.T) {
	scenario := strings.Replace(actScenario, "  datacenter = \"dc1\"\n  count      = 1\n", "  datacenter = \"dc1\"\n  count      = 2\n", 1)
	for _, tc := range []struct{ name, pols string }{
		{"reschedule", cappedWindowPolicies()},
		{"drain", drainStrategy(cappedWindowPolicies())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, scenario, tc.pols)
			a1, a2 := h.nodeID("a-1"), h.nodeID("a-2")
			if _, err := h.client.Nodes().ToggleEligibility(a2, false, nil); err != nil {
				t.Fatal(err)
			}
			h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
			if got := h.eligibility(a1); got != nomadapi.NodeSchedulingIneligible {
				t.Fatalf("a-1 %s at 06:14 while the window's requests wait; the test needs it out", got)
			}
			var cancelled []string
			for _, x := range h.local.FSM.Act().Requests {
				if x.Origin != "schedule" {
					continue
				}
				if !x.State.Queued() {
					t.Fatalf("%s %s at 06:14; the test needs every request of the window waiting", x.ID, x.State)
				}
				mustApply(t, h, state.CancelRequest{ID: x.ID, At: h.now(), Reason: OperatorCancel})
				cancelled = append(cancelled, x.ID)
			}
			if len(cancelled) == 0 {
				t.Fatal("no window request queued by 06:14")
			}
			h.quarterPass()
			if got := h.eligibility(a1); got != nomadapi.NodeSchedulingEligible {
				t.Errorf("a-1 %s after an operator cancelled every request of its window; want it given back; decisions %+v", got, h.local.FSM.Decisions())
			}
			said := 0
			for _, d := range h.local.FSM.Decisions() {
				if d.Kind == "restore" && strings.HasPrefix(d.Reason, "drain window dc1/maintenance from 06:30 UTC called off: an operator cancelled every request of it before any started") {
					said++
				}
			}
			if said != 1 {
				t.Errorf("%d decisions saying the window was called off; want one; decisions %+v", said, h.local.FSM.Decisions())
			}
			late := h.registerOn("late", a1)
			var out []string
			h.passUntil(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), func() {
				if h.eligibility(a1) != nomadapi.NodeSchedulingEligible && len(out) < 3 {
					out = append(out, h.now().Format("15:04"))
				}
			})
			if len(out) > 0 {
				t.Errorf("a-1 out of scheduling at %q after its window was called off", out)
			}
			if got := h.eligibility(a2); got != nomadapi.NodeSchedulingIneligible {
				t.Errorf("a-2 %s; want it ineligible, as the operator left it", got)
			}
			for _, x := range h.local.FSM.Act().Requests {
				if x.Origin == "schedule" && x.State != state.RequestCancelled {
					t.Errorf("%s (%s, %s) queued in the window an operator called off: %s", x.ID, x.Resource, x.State, x.Reason)
				}
			}
			refused := false
			for _, d := range h.local.FSM.Decisions() {
				refused = refused || d.Kind == shape.KindWait && strings.Contains(d.Reason, "not queued: "+errCalledOff.Error())
			}
			// Under the drain strategy the window's request of a-1 was
			// cancelled: late's allocation is a-1's work, and the planner
			// queues no request of a-1 again (its origin key is held).
			if !refused && tc.name == "reschedule" {
				t.Errorf("no wait decision saying the window's new request is not queued; decisions %+v", h.local.FSM.Decisions())
			}
			on := 0
			for _, a := range append(h.allocs("web"), h.allocs("late")...) {
				if (a.NodeID == a1 || a.NodeID == a2) && a.ClientStatus == nomadapi.AllocClientStatusRunning {
					on++
				}
			}
			if on != 3 {
				t.Errorf("%d allocations run on dc1 after the window; want web's 2 and late's %s, left where they were", on, late.ID)
			}
		})
	}
}

// registerOn registers a service job of one allocation that dc1 and dc2
// may run, with an affinity to dc1, and returns its allocation once it
// runs on node.
func (h *harness) registerOn(name, node string) *nomadapi.AllocationListStub {
	h.t.Helper()
	j := nomadapi.NewServiceJob(name, name, "global", 50)
	j.Datacenters = []string{"dc1", "dc2"}
	j.AddAffinity(nomadapi.NewAffinity("${node.datacenter}", "=", "dc1", 100))
	tg := nomadapi.NewTaskGroup(name, 1)
	tg.AddTask(nomadapi.NewTask(name, "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"infinity"}).
		Require(&nomadapi.Resources{CPU: new(200), MemoryMB: new(128)}))
	j.AddTaskGroup(tg)
	if _, _, err := h.client.Jobs().Register(j, nil); err != nil {
		h.t.Fatal(err)
	}
	for range 20 {
		h.step(10 * time.Second)
		for _, a := range h.allocs(name) {
			if a.ClientStatus == nomadapi.AllocClientStatusRunning && a.NodeID == node {
				return a
			}
		}
	}
	h.t.Fatalf("%s never ran on %s: %+v", name, node, h.allocs(name))
	return nil
}

// TestWindowCalledOffHoldsBackNoGiveBack: an operator calls off dc1's
// maintenance window (06:30–07:30) at 06:14, cancelling every request of
// it before any started; a-1 is back in scheduling. At 06:35 a whole-node
// request of a-1 takes it out and is cancelled. The window an operator
// called off held that give-back back until its end, 07:30 (read as a
// window of the policies under way that takes a-1 down), though it takes
// nothing out itself. Now a-1 goes back at the next pass.
func TestWindowCalledOffHoldsBackNoGiveBack(t *testing.T) {
	h := newHarness(t, actScenario, cappedWindowPolicies())
	a1 := h.nodeID("a-1")
	h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" {
			if !x.State.Queued() {
				t.Fatalf("%s %s at 06:14; the test needs every request of the window waiting", x.ID, x.State)
			}
			mustApply(t, h, state.CancelRequest{ID: x.ID, At: h.now(), Reason: OperatorCancel})
		}
	}
	h.passUntil(time.Date(2026, 1, 5, 6, 35, 0, 0, time.UTC), nil)
	if got := h.eligibility(a1); got != nomadapi.NodeSchedulingEligible {
		t.Fatalf("a-1 %s at 06:35 after its window was called off; the test needs it back", got)
	}
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: a1, Target: "dc2", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30))
	h.holdThenPause()
	if got := h.eligibility(a1); got != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s while %s waits queued: not held", got, id)
	}
	mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: OperatorCancel})
	h.quarterPass()
	if got := h.eligibility(a1); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-1 %s after %s was cancelled: its give-back waits for the window an operator called off; decisions %q",
			got, id, h.decisionsSaying("", "a-1"))
	}
}

// TestWindowNotCalledOffByForeshapesCancels: dc1's maintenance window
// (06:30–07:30) queues a request for each of web's two allocations at
// 06:10; they wait. At 06:14 an operator cancels one of them (that move,
// not the window); then web is stopped, and foreshape cancels the other
// request, its work gone. Every request of the window was then cancelled
// before it started, one by an operator, and the window read as called
// off: a-1 went back to scheduling at the next pass, in the middle of the
// window the operator had not called off. Now a window is called off only
// when an operator's cancel is what left none of its requests: a-1 stays
// out until 07:30.
func TestWindowNotCalledOffByForeshapesCancels(t *testing.T) {
	scenario := strings.Replace(actScenario, "  datacenter = \"dc1\"\n  count      = 1\n", "  datacenter = \"dc1\"\n  count      = 2\n", 1)
	h := newHarness(t, scenario, cappedWindowPolicies())
	a1 := h.nodeID("a-1")
	h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
	var queued []string
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && x.State.Queued() {
			queued = append(queued, x.ID)
		}
	}
	if len(queued) < 2 {
		t.Fatalf("window requests queued at 06:14 %q; the test needs two", queued)
	}
	mustApply(t, h, state.CancelRequest{ID: queued[0], At: h.now(), Reason: OperatorCancel})
	if _, _, err := h.client.Jobs().Deregister("web", false, nil); err != nil {
		t.Fatal(err)
	}
	from := h.now().Format("15:04")
	spans := h.outSpans(time.Date(2026, 1, 5, 7, 33, 0, 0, time.UTC), a1)[a1]
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin == "schedule" && x.State != state.RequestCancelled {
			t.Fatalf("%s %s; the test needs every request of the window cancelled", x.ID, x.State)
		}
		if x.Origin == "schedule" && x.Reason == OperatorCancel && x.ID != queued[0] {
			t.Fatalf("%s cancelled as by an operator: %s", x.ID, x.Reason)
		}
	}
	if want := []string{from + "–07:30"}; !slices.Equal(spans, want) {
		t.Errorf("a-1 out of scheduling %q; want %q, in a window an operator did not call off; decisions %q", spans, want, h.decisionsSaying("", "a-1"))
	}
	if got := h.decisionsSaying("", "called off"); len(got) != 0 {
		t.Errorf("decisions saying the window was called off %q; want none", got)
	}
}
