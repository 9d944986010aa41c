package shape

import (
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// TestPolicyScaleBlocksInFileOrder: of a policy's scale blocks, the planner
// scales through the first in file order that is not cooling down, as
// docs/policies.md says.
func TestPolicyScaleBlocksInFileOrder(t *testing.T) {
	workers := state.CooldownKey("dc2", "workers")
	for _, tc := range []struct {
		name  string
		setup func(f *fixture)
		want  string
	}{
		{"the first", func(*fixture) {}, "workers"},
		{"the next while the first cools down", func(f *fixture) {
			f.st.Cooldowns = map[string]time.Time{workers: at(-5 * time.Minute)}
		}, "spare"},
		{"the next while the first's target has not answered", func(f *fixture) {
			f.st.OpenIntents = []state.Intent{{ID: "scale/" + workers, Kind: state.IntentScaleTarget, Object: workers, Opened: at(-time.Minute)}}
		}, "spare"},
		{"the next while the first backs off after a failure", func(f *fixture) {
			f.st.ScaleActions = []state.ScaleAction{{ID: "sa-1", Policy: "dc2", Scale: "workers", At: at(-time.Minute),
				Outcome: state.OutcomeFailed, Error: "no answer"}}
		}, "spare"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.queued(f.allocRequest("web-0"))
			f.setFrom("dc2", "cpu", 0, 79)
			spare := f.pols[1].Scales[0]
			spare.Name = "spare"
			f.pols[1].Scales = append(f.pols[1].Scales, spare)
			tc.setup(f)
			plan := Run(f.input())
			if len(plan.Scale) != 1 || plan.Scale[0].Scale != tc.want {
				t.Errorf("scaled %+v; want one action through %q", plan.Scale, tc.want)
			}
		})
	}
}
