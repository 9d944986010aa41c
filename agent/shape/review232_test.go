package shape

import (
	"testing"
	"time"
)

// TestHoldOfAnotherPolicysForecastOnlyLocalityStarts: ops (dc3) drains all
// of dc1 from 08:30, its lead time two hours; dc1's own policy is
// forecast_only. dc1 is empty, so ops's window queues its request that
// moves nothing at 06:40, as ops is not forecast_only, and it starts at
// the next pass, not dry: its target is dc1 only as a formality (it moves
// nothing into it), and ops's moves of dc1's work, had there been any,
// would have started and taken dc1's nodes out too. Started dry (the
// target's forecast_only read as if work moved there), it never started,
// dc1's nodes stayed eligible through ops's window and the queued request
// claimed one of them until the window's end.
func TestHoldOfAnotherPolicysForecastOnlyLocalityStarts(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.pols = append(f.pols, parsePolicies(t, opsPolicy)...)
	f.pols[0].ForecastOnly = true
	f.allocs = nil
	f.now = at(40 * time.Minute) // 06:40: only ops's lead has begun
	plan := Run(f.input())
	if len(plan.Submit) != 1 || !WindowHold(&plan.Submit[0].Request) || plan.Submit[0].DryRun {
		t.Fatalf("queued %+v; want ops's hold request of dc1, not dry", plan.Submit)
	}
	f.queued(plan.Submit[0].Request)
	f.now = at(41 * time.Minute)
	plan = Run(f.input())
	if len(plan.Start) != 1 || plan.Start[0].Request != f.st.Requests[0].ID || plan.Start[0].DryRun {
		t.Errorf("starts %+v; want %s's, not dry", plan.Start, f.st.Requests[0].ID)
	}
}
