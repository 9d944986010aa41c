package migrate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
)

// reasonsTarget fails an action with each of its reasons in turn, then
// succeeds.
type reasonsTarget struct {
	fakeTarget
	reasons []string
}

func (r *reasonsTarget) Scale(ctx context.Context, a target.Action) (target.Result, error) {
	r.mu.Lock()
	if len(r.reasons) > 0 {
		why := r.reasons[0]
		r.reasons = r.reasons[1:]
		r.actions = append(r.actions, a)
		r.mu.Unlock()
		return target.Result{Attempts: 1}, &target.Error{Plugin: "fake", Kind: target.Refused, Attempts: 1, Reason: why}
	}
	r.mu.Unlock()
	return r.fakeTarget.Scale(ctx, a)
}

// TestScaleFailuresAlikeAreOneDecision: a scale block whose target keeps
// failing with the same error (a cloud out of capacity, tried again at
// every back-off) records one decision saying so, not one per try; a
// failure with another error is recorded again. Each try is logged.
func TestScaleFailuresAlikeAreOneDecision(t *testing.T) {
	rt := &reasonsTarget{fakeTarget: fakeTarget{count: 2},
		reasons: []string{"no capacity left", "no capacity left", "no capacity left", "quota exceeded"}}
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Targets = func(*policies.Policy, *policies.Scale) (target.Target, error) { return rt, nil }
	})
	for range 5 {
		h.run(h.hotForecasts())
		h.step(3 * time.Minute)
	}
	if n := rt.calls(); n < 5 {
		t.Fatalf("%d scale calls; want the four failures and a success", n)
	}
	var failed []string
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "scale" && strings.Contains(d.Reason, " failed (") {
			failed = append(failed, d.Reason)
		}
	}
	if len(failed) != 2 || !strings.Contains(failed[0], "no capacity left") || !strings.Contains(failed[1], "quota exceeded") {
		t.Errorf("failure decisions %q; want two: the first no capacity left, then quota exceeded", failed)
	}
}
