package migrate

import (
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestPausedQueueKeepsOutWhatABegunWindowTakesDown: a drain window whose
// time has begun holds a node it takes down though its requests wait in
// the paused queue. dc1's maintenance (06:30–07:30) took a-1 out; the same
// policy's late-maint (07:15–08:15) would queue its request that moves
// nothing at 06:55, into a queue paused at 06:50, where it waits. At 07:30
// maintenance's give-back of a-1 is held back by late-maint, which has
// begun and takes a-1 down, with a hold decision naming it: a-1 was out
// before the pause and stays out, rather than going back to Nomad for the
// minutes until the resume takes it out again for late-maint. Nothing is
// lost: late-maint's end gives a-1 back, the queue still paused. (A
// request waiting in the paused queue of a window that has not begun holds
// back no give-back: TestPausedQueueHoldsBackNoGiveBack.) An operator who
// wants the node back at once calls late-maint off (cancels its request):
// a window called off holds nothing.
func TestPausedQueueKeepsOutWhatABegunWindowTakesDown(t *testing.T) {
	pols := strings.Replace(windowPolicies(""), `  schedule "maintenance" {`, `  schedule "late-maint" {
    cron       = "15 7 * * *"
    duration   = "1h"
    action     = "drain"
    localities = ["dc1"]
  }
  schedule "maintenance" {`, 1)
	for _, tc := range []struct {
		name    string
		callOff bool
		want    []string // a-1's spans out of scheduling from 07:40 on
	}{
		{"held to the begun window's end", false, []string{"07:40–08:15"}},
		{"given back when the operator calls it off", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, actScenario, pols)
			node := h.nodeID("a-")
			h.passUntil(time.Date(2026, 1, 5, 6, 49, 0, 0, time.UTC), nil)
			if got := h.eligibility(node); got != nomadapi.NodeSchedulingIneligible {
				t.Fatalf("a-1 %s at 06:50 in maintenance's window; the test needs it out", got)
			}
			mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
			spans := h.outSpans(time.Date(2026, 1, 5, 7, 39, 0, 0, time.UTC), node)[node]
			if want := []string{"06:50–"}; !slices.Equal(spans, want) {
				t.Fatalf("a-1 out of scheduling %q to 07:40 in the paused queue; want %q (held by late-maint, begun at 07:15)", spans, want)
			}
			holds := h.holdRequests()
			if len(holds) != 1 || !strings.HasPrefix(holds[0].OriginKey, "schedule/dc1/late-maint/") || !holds[0].State.Queued() {
				t.Fatalf("hold requests %+v; the test needs late-maint's waiting in the paused queue", holds)
			}
			said := 0
			for _, d := range h.local.FSM.Decisions() {
				if d.Kind == "hold" && strings.Contains(d.Reason, "node a-1 stays out of scheduling: drain window dc1/late-maint holds it until 08:15 UTC") {
					said++
				}
			}
			if said != 1 {
				t.Errorf("%d hold decisions naming late-maint for a-1; want one (decisions %+v)", said, h.local.FSM.Decisions())
			}
			if tc.callOff {
				mustApply(t, h, state.CancelRequest{ID: holds[0].ID, At: h.now(), Reason: OperatorCancel})
			}
			spans = h.outSpans(time.Date(2026, 1, 5, 8, 18, 0, 0, time.UTC), node)[node]
			if !slices.Equal(spans, tc.want) {
				t.Errorf("a-1 out of scheduling %q from 07:40, the queue paused; want %q (decisions %+v)", spans, tc.want, h.local.FSM.Decisions())
			}
			if got := h.eligibility(node); got != nomadapi.NodeSchedulingEligible {
				t.Errorf("a-1 %s at 08:18: nothing gave it back", got)
			}
			if !h.local.FSM.Act().Paused {
				t.Fatal("the queue was resumed; the test keeps it paused")
			}
		})
	}
}
