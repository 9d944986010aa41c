package migrate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
)

// unreadAfterLoss is a lostTarget whose count cannot be read for a
// while after its answer was lost, as a Nomad in a leader election: the
// scale committed, its answer was a 500 or a timeout, and the read back
// right after failed too ("No cluster leader").
type unreadAfterLoss struct {
	lostTarget
	unread int
}

func (u *unreadAfterLoss) Status(ctx context.Context) (target.Status, error) {
	u.mu.Lock()
	if len(u.actions) > 0 && u.unread > 0 {
		u.unread--
		u.mu.Unlock()
		return target.Status{}, errors.New("Unexpected response code: 500 (No cluster leader)")
	}
	u.mu.Unlock()
	return u.lostTarget.Status(ctx)
}

// TestScaleWhoseAnswerWasLostIsDoneWhenReadLater: a target sets the count
// asked for and answers timed out, and cannot be read back at once. The
// block's next action, after the back-off, reads the target showing the
// count the lost action asked for: that action took effect, so it is
// recorded done and its cooldown runs, and no second action follows for
// the same need (before, the next action scaled on top of the count the
// lost one had set: 2 → 3, then 3 → 4, for one need of one node).
func TestScaleWhoseAnswerWasLostIsDoneWhenReadLater(t *testing.T) {
	ut := &unreadAfterLoss{lostTarget: lostTarget{fakeTarget: fakeTarget{count: 2}, lose: 1}, unread: 1}
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Targets = func(*policies.Policy, *policies.Scale) (target.Target, error) { return ut, nil }
	})
	for range 8 {
		h.run(h.hotForecasts())
		h.step(time.Minute)
	}
	if n := ut.calls(); n != 1 {
		t.Errorf("%d scale calls in eight minutes of a lasting hotspot (cooldown 10m, back-off 2m30s); want the one whose answer was lost", n)
	}
	if ut.count != 3 {
		t.Errorf("target count %d; want 3, the lost action's", ut.count)
	}
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) == 0 || acts[0].Outcome != state.OutcomeDone || acts[0].TookEffect.IsZero() {
		t.Fatalf("scale actions %+v; want the first done, its cooldown running", acts)
	}
}

// TestRefusedScaleIsNotFoundDone: a target that refused an action (it
// answered no) did not take it, even when its count shows, by the next
// action, the count that action asked for (an operator set it): the
// refusal stays on record and the need is scaled for after the back-off.
func TestRefusedScaleIsNotFoundDone(t *testing.T) {
	ft := &fakeTarget{count: 2, refuse: 1}
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Targets = func(*policies.Policy, *policies.Scale) (target.Target, error) { return ft, nil }
	})
	h.run(h.hotForecasts())
	ft.mu.Lock()
	ft.count = 3 // the operator's
	ft.mu.Unlock()
	for range 4 {
		h.step(time.Minute)
		h.run(h.hotForecasts())
	}
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) != 2 || acts[0].Outcome != state.OutcomeFailed || acts[1].Outcome != state.OutcomeDone || acts[1].Count != 4 {
		t.Errorf("scale actions %+v; want the refused one failed, then one to 4 after the back-off", acts)
	}
}

// TestOldFailedScaleIsNotFoundDone: a count the target shows long after
// an action failed (here two hours, past the block's 10m cooldown) may be
// anyone's: that action stays failed, and the need is scaled for.
func TestOldFailedScaleIsNotFoundDone(t *testing.T) {
	ut := &unreadAfterLoss{lostTarget: lostTarget{fakeTarget: fakeTarget{count: 2}, lose: 1}, unread: 1}
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Targets = func(*policies.Policy, *policies.Scale) (target.Target, error) { return ut, nil }
	})
	h.run(h.hotForecasts())
	h.step(2 * time.Hour)
	h.run(h.hotForecasts())
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) != 2 || acts[0].Outcome != state.OutcomeFailed || acts[1].Outcome != state.OutcomeDone || acts[1].Count != 4 {
		t.Errorf("scale actions %+v; want the first failed, then one to 4", acts)
	}
}
