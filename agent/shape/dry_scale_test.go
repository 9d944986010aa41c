package shape

import (
	"testing"
	"time"
)

// TestDryRequestScalesDry: a request planned dry because its source's
// policy is forecast_only (its target's is not) moves nothing, so the
// capacity its target lacks for it is not scaled for in earnest: the
// scale is planned dry, as its reservation is. A request of the target's
// own policy that is not dry still scales in the same pass.
func TestDryRequestScalesDry(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.now = at(95 * time.Minute)
	f.pols[0].ForecastOnly = true // dc1's: the moved work's source
	f.setFrom("dc2", "cpu", 0, 79)
	f.queued(f.allocRequest("web-0"))
	plan := Run(f.input())
	if len(plan.Scale) == 0 {
		t.Fatalf("no scale planned: %+v", plan.Decisions)
	}
	for _, s := range plan.Scale {
		if !s.DryRun {
			t.Errorf("a dry request's scale is made in earnest: %+v", s)
		}
	}
	for _, d := range decisionsOf(plan, KindScale) {
		if !d.DryRun {
			t.Errorf("scale decision not marked dry: %+v", d)
		}
	}
}

// TestDryRequestLeavesAHotspotsScale: a scale planned dry for a dry
// request does not stand for the one its target's hotspot needs in
// earnest in the same pass.
func TestDryRequestLeavesAHotspotsScale(t *testing.T) {
	f := baseFixture(t, "reschedule")
	f.now = at(95 * time.Minute)
	f.pols[0].ForecastOnly = true
	f.setFrom("dc2", "cpu", 0, 85) // over dc2's line: a hotspot of its own
	f.queued(f.allocRequest("web-0"))
	plan := Run(f.input())
	var live, dry int
	for _, s := range plan.Scale {
		if s.DryRun {
			dry++
		} else {
			live++
		}
	}
	if live != 1 || dry != 1 {
		t.Errorf("scales %+v; want one dry (the request's) and one made (the hotspot's)", plan.Scale)
	}
}
