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
	for _, tc := range []struct {
		name    string
		cooling bool
		want    string
	}{
		{"the first", false, "workers"},
		{"the next while the first cools down", true, "spare"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := baseFixture(t, "reschedule")
			f.queued(f.allocRequest("web-0"))
			f.setFrom("dc2", "cpu", 0, 79)
			spare := f.pols[1].Scales[0]
			spare.Name = "spare"
			f.pols[1].Scales = append(f.pols[1].Scales, spare)
			if tc.cooling {
				f.st.Cooldowns = map[string]time.Time{state.CooldownKey("dc2", "workers"): at(-5 * time.Minute)}
			}
			plan := Run(f.input())
			if len(plan.Scale) != 1 || plan.Scale[0].Scale != tc.want {
				t.Errorf("scaled %+v; want one action through %q", plan.Scale, tc.want)
			}
		})
	}
}
