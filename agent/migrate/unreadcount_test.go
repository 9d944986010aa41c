package migrate

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/sim"
)

// TestScaleWithAnUnreadCountDoesNotStartFromAnOldOne: a nomad-job block
// last set its group to 8; the cluster's own autoscaler has scaled the
// group in to 3 since. A pass whose read of the target fails (here Nomad
// answers the job's deployment read with 500) must not start from 8, the
// count foreshape last set, which the target's own read, finding 3 below
// it, then set: up by 6 for a need of one (3 → 9). No action is issued
// while the count cannot be read, one decision says why, and the next pass
// that reads it scales the group from 3 to 4.
func TestScaleWithAnUnreadCountDoesNotStartFromAnOldOne(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies, func(c *Config) { c.Targets = nil })
	desired := func() int {
		t.Helper()
		st, _, err := h.client.Jobs().ScaleStatus("web", nil)
		if err != nil {
			t.Fatal(err)
		}
		return st.TaskGroups["frontend"].Desired
	}
	setCount := func(n int64, msg string) {
		t.Helper()
		if _, _, err := h.client.Jobs().ScaleWithRequest("web", &nomadapi.ScalingRequest{Count: &n,
			Target: map[string]string{"Job": "web", "Group": "frontend"}, Message: msg}, nil); err != nil {
			t.Fatal(err)
		}
	}
	setCount(7, "test: the group before")
	h.step(30 * time.Second)
	h.run(h.hotForecasts())
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) != 1 || acts[0].Outcome != state.OutcomeDone || acts[0].Count != 8 || desired() != 8 {
		t.Fatalf("scale actions %+v, group at %d; the test needs one done to 8", acts, desired())
	}
	h.step(11 * time.Minute) // past the cooldown, its deployment ended
	setCount(3, "test: the cluster's autoscaler scales in")
	h.step(time.Minute)
	if err := h.sim.SetFaults(sim.Faults{ErrorRate: 1, PathPrefix: "/v1/job/web/deployment"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		h.run(h.hotForecasts())
		if got := desired(); got != 3 {
			t.Fatalf("a pass that could not read the group's count set it from 3 to %d (scale actions %+v)", got, h.local.FSM.Act().ScaleActions)
		}
		h.step(time.Minute)
	}
	said := 0
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "scale" && strings.Contains(d.Reason, "its count could not be read") {
			said++
		}
	}
	if said != 1 {
		t.Errorf("%d decisions say why the scale was not issued in three passes; want one", said)
	}
	if err := h.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.run(h.hotForecasts())
	if got := desired(); got != 4 {
		t.Errorf("the next pass, reading the count, set the group from 3 to %d; want 4 (scale actions %+v)", got, h.local.FSM.Act().ScaleActions)
	}
}
