package migrate

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/sim"
)

// TestScaleUpWithAnUnreadCountKeepsTheGroup: the coordinator starts an
// up action from the target's count, and from the block's min when it
// cannot read it (here Nomad answers the job's deployment read with 500).
// The nomad-job target reads the count again before it scales: the group
// an operator had raised to 6 stays at 6, where the action, up by one
// from min 0, set it to 1.
func TestScaleUpWithAnUnreadCountKeepsTheGroup(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies, func(c *Config) { c.Targets = nil })
	six := int64(6)
	if _, _, err := h.client.Jobs().ScaleWithRequest("web", &nomadapi.ScalingRequest{Count: &six,
		Target: map[string]string{"Job": "web", "Group": "frontend"}, Message: "operator"}, nil); err != nil {
		t.Fatal(err)
	}
	h.step(30 * time.Second)
	if err := h.sim.SetFaults(sim.Faults{ErrorRate: 1, PathPrefix: "/v1/job/web/deployment"}); err != nil {
		t.Fatal(err)
	}
	h.run(h.hotForecasts())
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) != 1 {
		t.Fatalf("scale actions %+v; want one", acts)
	}
	st, _, err := h.client.Jobs().ScaleStatus("web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.TaskGroups["frontend"].Desired; got != 6 {
		t.Errorf("an up action (%+v) left the group of count 6 at %d", acts[0], got)
	}
	if a := acts[0]; a.Outcome != state.OutcomeDone || a.Count != 6 {
		t.Errorf("scale action %+v; want done at count 6", a)
	}
}
