package migrate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
)

// TestScaleTargetRebuiltWhenItsBlockChanges: a scale block's target is
// built once and kept while its target block stays the same, policies
// parsed again (a reload) included; a reload that changes the block under
// the same policy and scale names (here the nomad-job's group) builds it
// again from the new block. Before, targets were kept by the names alone,
// so the agent logged "reloaded" and scaled the old group until a restart.
func TestScaleTargetRebuiltWhenItsBlockChanges(t *testing.T) {
	var built []string
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Targets = func(_ *policies.Policy, sc *policies.Scale) (target.Target, error) {
			built = append(built, fmt.Sprintf("%+v", sc.Target.Config))
			return &fakeTarget{count: 2}, nil
		}
	})
	workers := func(src string) (*policies.Policy, *policies.Scale) {
		t.Helper()
		ps, diags := policies.Parse("act.hcl", []byte(src))
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		for _, p := range ps {
			for i := range p.Scales {
				if p.Scales[i].Name == "workers" {
					return p, &p.Scales[i]
				}
			}
		}
		t.Fatal("no scale block workers")
		return nil, nil
	}
	get := func(src string) target.Target {
		t.Helper()
		p, sc := workers(src)
		tg, err := h.c.target(p, sc)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	first := get(actPolicies)
	if again := get(actPolicies); again != first || len(built) != 1 {
		t.Fatalf("the same block parsed again: %d builds, same target %v; want 1 build, the same target", len(built), again == first)
	}
	changed := strings.Replace(actPolicies, `group = "frontend"`, `group = "backend"`, 1)
	if changed == actPolicies {
		t.Fatal("the test's policies have no group frontend to change")
	}
	if next := get(changed); next == first || len(built) != 2 || !strings.Contains(built[1], "backend") {
		t.Fatalf("after the block changed: builds %v; want a second, for group backend", built)
	}
	if get(changed); len(built) != 2 {
		t.Errorf("the changed block parsed again built it again: %v", built)
	}
}
