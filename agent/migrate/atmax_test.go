package migrate

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
)

// TestScaleBlockAtItsMaxLetsTheNextAct: dc2's first scale block,
// "workers", is at its max (its target reports 10 of 10); a forecast
// hotspot in dc2 goes to the policy's next block, "more", which scales,
// and a decision says "workers" is at its max (before: "workers" was
// chosen again every pass, its action not issued, and "more" never
// tried). Once the first target is below its max again (scaled in), it is
// the one chosen again.
func TestScaleBlockAtItsMaxLetsTheNextAct(t *testing.T) {
	pols := strings.Replace(actPolicies, "      group = \"frontend\"\n    }\n  }\n}\n",
		"      group = \"frontend\"\n    }\n  }\n  scale \"more\" {\n    min      = 0\n    max      = 10\n    cooldown = \"10m\"\n    target \"nomad-job\" {\n      job   = \"web\"\n      group = \"frontend\"\n    }\n  }\n}\n", 1)
	more := &fakeTarget{count: 2}
	var h *harness
	h = newHarness(t, actScenario, pols, func(c *Config) {
		c.Targets = func(_ *policies.Policy, s *policies.Scale) (target.Target, error) {
			if s.Name == "more" {
				return more, nil
			}
			return h.fake, nil
		}
	})
	if len(h.pols[1].Scales) != 2 {
		t.Fatalf("dc2's scale blocks %+v; the test needs two", h.pols[1].Scales)
	}
	h.fake.count = 10
	for range 3 {
		h.run(h.hotForecasts())
		h.step(time.Minute)
	}
	if n := h.fake.calls(); n != 0 {
		t.Errorf("%d scale calls to the block at its max; want none", n)
	}
	if n := more.calls(); n != 1 {
		t.Errorf("%d scale calls to the next block; want one: the first is at its max", n)
	}
	if said := h.decisionsSaying("", `scale "workers" is at its max 10`); len(said) == 0 {
		t.Errorf("no decision that the first block is at its max")
	}
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) != 1 || acts[0].Scale != "more" || acts[0].Count != 3 {
		t.Errorf("scale actions %+v; want one, of \"more\", to 3", acts)
	}

	// The first target scaled in below its max: the first block is
	// chosen again at the next pass.
	h.fake.mu.Lock()
	h.fake.count = 4
	h.fake.mu.Unlock()
	for range 5 {
		h.step(time.Minute)
		h.run(h.hotForecasts())
	}
	if n := h.fake.calls(); n != 1 {
		t.Errorf("%d scale calls to the first block once below its max; want one", n)
	}
	if last := h.local.FSM.Act().ScaleActions; len(last) < 2 || last[len(last)-1].Scale != "workers" || last[len(last)-1].Outcome != state.OutcomeDone {
		t.Errorf("scale actions %+v; want the last of \"workers\", done", last)
	}
}
