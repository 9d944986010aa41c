package migrate

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/policies"
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

// TestScaleLeaderStopsMidCall: a leader stops while its scale target has
// the call (here it never answers), before the target scaled. The next
// leader's first pass reads the target's count back: below the count
// asked, the action is recorded not done, and the pass issues a new one
// at once (before: counted done, the block stayed quiet for its whole
// 10m cooldown with the capacity never asked for). The new action
// carries the absolute count read from the target, so it sets the same
// count as the first, not one more, under a new id; no third follows
// inside its cooldown.
func TestScaleLeaderStopsMidCall(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies, func(c *Config) { c.SyncScale = false })
	entered, release := make(chan struct{}, 1), make(chan struct{})
	h.fake.wait = func() {
		entered <- struct{}{}
		<-release
	}
	t.Cleanup(func() {
		close(release)
		h.c.Wait()
	})
	h.run(h.hotForecasts())
	<-entered // the intent is open and the target has the call
	h.fake.mu.Lock()
	h.fake.wait = nil
	h.fake.mu.Unlock()

	h2 := newCoordinatorOn(t, h)
	if err := h2.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	for range 9 {
		h.step(time.Minute)
		if _, err := h2.RunOnce(h.ctx, h.now(), h.pols, h.hotForecasts()); err != nil {
			t.Fatal(err)
		}
		h2.Wait()
	}
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) != 2 || acts[0].Outcome != state.OutcomeNotDone || !strings.Contains(acts[0].Error, "below the count 3 asked for") ||
		acts[1].Outcome != state.OutcomeDone || !acts[1].At.Equal(acts[0].Finished) {
		t.Fatalf("scale actions after the new leader's passes: %+v; want the first not done, the second done at the first pass", acts)
	}
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	if len(h.fake.actions) != 2 || h.fake.actions[1].Count != h.fake.actions[0].Count || h.fake.actions[1].ID == h.fake.actions[0].ID {
		t.Errorf("actions %+v; want a second, at the new leader's first pass, to the same count under a new id", h.fake.actions)
	}
}

// TestScaleLeaderStopsMidCallOfABlindTarget: as above, with a target
// that cannot tell its count (a webhook). The next leader counts the
// action as done from its first pass, the latest it can have taken
// effect, and issues no second scale inside the block's 10m cooldown;
// after it, one.
func TestScaleLeaderStopsMidCallOfABlindTarget(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies, func(c *Config) { c.SyncScale = false })
	h.fake.blind = true
	entered, release := make(chan struct{}, 1), make(chan struct{})
	h.fake.wait = func() {
		entered <- struct{}{}
		<-release
	}
	t.Cleanup(func() {
		close(release)
		h.c.Wait()
	})
	h.run(h.hotForecasts())
	<-entered
	h.fake.mu.Lock()
	h.fake.wait = nil
	h.fake.mu.Unlock()

	h2 := newCoordinatorOn(t, h)
	if err := h2.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		h.step(time.Minute)
		if _, err := h2.RunOnce(h.ctx, h.now(), h.pols, h.hotForecasts()); err != nil {
			t.Fatal(err)
		}
		h2.Wait()
		if i == 0 {
			acts := h.local.FSM.Act().ScaleActions
			if len(acts) != 1 || acts[0].Outcome != state.OutcomeDone || !strings.Contains(acts[0].Error, "outcome unknown") {
				t.Fatalf("scale actions after the new leader's first pass: %+v", acts)
			}
		}
	}
	if n := h.fake.calls(); n != 1 {
		t.Fatalf("%d scale calls inside the cooldown after the leader stopped; want 1", n)
	}
	h.step(2 * time.Minute)
	if _, err := h2.RunOnce(h.ctx, h.now(), h.pols, h.hotForecasts()); err != nil {
		t.Fatal(err)
	}
	h2.Wait()
	if n := h.fake.calls(); n != 2 {
		t.Errorf("%d scale calls after the cooldown; want 2", n)
	}
}

// TestScaleLeaderStopsAfterTheTargetScaled: the leader stops once its
// target has scaled to the count asked, before it heard so. The next
// leader reads that count back, counts the action done, and issues no
// second scale inside its cooldown.
func TestScaleLeaderStopsAfterTheTargetScaled(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies, func(c *Config) { c.SyncScale = false })
	entered, release := make(chan struct{}, 1), make(chan struct{})
	h.fake.wait = func() {
		entered <- struct{}{}
		<-release
	}
	t.Cleanup(func() {
		close(release)
		h.c.Wait()
	})
	h.run(h.hotForecasts())
	<-entered
	h.fake.mu.Lock()
	h.fake.wait, h.fake.count = nil, h.fake.actions[0].Count
	h.fake.mu.Unlock()

	h2 := newCoordinatorOn(t, h)
	if err := h2.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	for range 9 {
		h.step(time.Minute)
		if _, err := h2.RunOnce(h.ctx, h.now(), h.pols, h.hotForecasts()); err != nil {
			t.Fatal(err)
		}
		h2.Wait()
	}
	acts := h.local.FSM.Act().ScaleActions
	if len(acts) != 1 || acts[0].Outcome != state.OutcomeDone || !strings.Contains(acts[0].Error, "shows count 3") {
		t.Fatalf("scale actions: %+v; want the one, done", acts)
	}
	if n := h.fake.calls(); n != 1 {
		t.Errorf("%d scale calls inside the cooldown; want 1", n)
	}
}

// TestHungTargetHoldsOnlyItsBlock: a scale target that never answers
// holds neither the coordinator's pass nor another policy's scale block:
// the pass returns, the other block scales at once, and later passes do
// not call the hung target again while its call is open.
func TestHungTargetHoldsOnlyItsBlock(t *testing.T) {
	pols := strings.Replace(actPolicies, `  migrate {
    max_parallel = 1
    targets      = ["dc2"]
  }`, `  scale "more" {
    min = 0
    max = 10
    target "nomad-job" {
      job   = "other"
      group = "g"
    }
  }`, 1)
	if pols == actPolicies {
		t.Fatal("the test's policies have no migrate block to replace")
	}
	hung, fine := &fakeTarget{count: 2}, &fakeTarget{count: 2}
	entered, release := make(chan struct{}, 1), make(chan struct{})
	hung.wait = func() {
		entered <- struct{}{}
		<-release
	}
	h := newHarness(t, actScenario, pols, func(c *Config) {
		c.SyncScale = false
		c.Targets = func(p *policies.Policy, _ *policies.Scale) (target.Target, error) {
			if p.Name == "dc2" {
				return hung, nil
			}
			return fine, nil
		}
	})
	t.Cleanup(func() {
		close(release)
		h.c.Wait()
	})
	hot := func() []shape.Forecast { return h.flatForecasts(95) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(hot())
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the pass waits for the hung target")
	}
	<-entered
	deadline := time.Now().Add(time.Minute)
	for fine.calls() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if fine.calls() != 1 {
		t.Fatalf("policy dc1's block made %d scale calls while dc2's hangs; want 1", fine.calls())
	}
	for range 3 {
		h.step(5 * time.Minute)
		h.run(hot())
	}
	if n := hung.calls(); n != 1 {
		t.Errorf("%d calls to the hung target; want 1", n)
	}
}

// TestFailedScaleKindsBackOffAlike: a refused, a timed-out and a failed
// action end alike: recorded as failed with the target's error, no
// cooldown, and the block's next action comes after the back-off (a
// quarter of the 10m cooldown), not at the next pass.
func TestFailedScaleKindsBackOffAlike(t *testing.T) {
	for _, kind := range []target.Kind{target.Refused, target.Timeout, target.Failed} {
		t.Run(kind.String(), func(t *testing.T) {
			ft := &failingTarget{fakeTarget: fakeTarget{count: 2}, kind: kind, fails: 1}
			var logs syncbuf.Buffer
			h := newHarness(t, actScenario, actPolicies, func(c *Config) {
				c.Targets = func(*policies.Policy, *policies.Scale) (target.Target, error) { return ft, nil }
				c.Logger = hclog.New(&hclog.LoggerOptions{Output: io.MultiWriter(&logs, testWriter{t}), Level: hclog.Debug})
			})
			h.run(h.hotForecasts())
			acts := h.local.FSM.Act().ScaleActions
			if len(acts) != 1 || acts[0].Outcome != state.OutcomeFailed || !strings.Contains(acts[0].Error, "fake target: "+kind.String()) {
				t.Fatalf("scale actions %+v", acts)
			}
			if want := "scale action: policy=dc2 scale=workers count=3 outcome=failed error=\"migrate: scale_target/dc2/workers/" + acts[0].ID +
				"#0: fake target: " + kind.String() + ": as told\""; !strings.Contains(logs.String(), want) {
				t.Errorf("the log does not say %s", want)
			}
			if _, ok := h.local.FSM.Act().Cooldowns[state.CooldownKey("dc2", "workers")]; ok {
				t.Errorf("a %s action started a cooldown", kind)
			}
			failed := false
			for _, d := range h.local.FSM.Decisions() {
				failed = failed || d.Kind == "scale" && d.Policy == "dc2" && strings.HasPrefix(d.Reason, `scale "workers" up by 1 to 3 failed (`+acts[0].ID+"): ") &&
					strings.Contains(d.Reason, "fake target: "+kind.String())
			}
			if !failed {
				t.Errorf("no scale decision says the action failed; decisions %+v", h.local.FSM.Decisions())
			}
			h.step(time.Minute)
			h.run(h.hotForecasts())
			if n := ft.calls(); n != 1 {
				t.Fatalf("%d scale calls a minute after a %s action; want 1", n, kind)
			}
			h.step(2 * time.Minute)
			h.run(h.hotForecasts())
			if n := ft.calls(); n != 2 {
				t.Fatalf("%d scale calls after the back-off; want 2", n)
			}
			ft.mu.Lock()
			defer ft.mu.Unlock()
			for _, a := range ft.actions {
				if a.Direction != target.Up {
					t.Errorf("action %s goes %s; foreshape only scales up", a.ID, a.Direction)
				}
			}
		})
	}
}

// failingTarget fails its first fails actions with an error of kind.
type failingTarget struct {
	fakeTarget
	kind  target.Kind
	fails int
}

func (f *failingTarget) Scale(ctx context.Context, a target.Action) (target.Result, error) {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.actions = append(f.actions, a)
		f.mu.Unlock()
		return target.Result{Attempts: 1}, &target.Error{Plugin: "fake", Kind: f.kind, Attempts: 1, Reason: "as told"}
	}
	f.mu.Unlock()
	return f.fakeTarget.Scale(ctx, a)
}

// blindTarget cannot tell its count, as webhook and exec cannot.
type blindTarget struct{ fakeTarget }

func (b *blindTarget) Status(context.Context) (target.Status, error) {
	return target.Status{Ready: true}, nil
}

// TestScaleCountOfABlindTarget: a target that cannot tell its count
// (webhook, exec) gets the count of its block's last successful action
// plus the amount; its failed actions do not count.
func TestScaleCountOfABlindTarget(t *testing.T) {
	long := -48 * time.Hour
	for _, tc := range []struct {
		name   string
		others int
		want   int
		skip   string
		// none: the block has no successful action, only the failed
		// one: the count starts from min (0 here).
		none bool
		// last is the count of the block's last successful action
		// (8 when 0).
		last int
	}{
		{"from the last count set", 10, 9, "", false, 0},
		{"from min when none succeeded", 10, 1, "", true, 0},
		// foreshape cannot tell whether the receiver scaled in since:
		// a block whose last count is its max (10) is sent its max again.
		{"at its max, its max again", 10, 10, "", false, 10},
		// The state keeps 200 scale actions of all blocks together, and
		// each block's latest successful one beyond them; without it, the
		// coordinator started from min (count 1 after 8).
		{"after 200 other actions", 200, 9, "", false, 0},
		{"after 1,000 other actions", 1000, 9, "", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			bt := &blindTarget{}
			h := newHarness(t, actScenario, actPolicies, func(c *Config) {
				c.Targets = func(*policies.Policy, *policies.Scale) (target.Target, error) { return bt, nil }
			})
			at := h.now().Add(long)
			if !tc.none {
				mustApply(t, h, state.RecordScaleAction{Action: state.ScaleAction{Policy: "dc2", Scale: "workers", Plugin: "webhook", Locality: "dc2",
					Direction: "up", Amount: 2, Count: cmp.Or(tc.last, 8), At: at, Outcome: state.OutcomeDone, Finished: at, TookEffect: at}})
			}
			mustApply(t, h, state.RecordScaleAction{Action: state.ScaleAction{Policy: "dc2", Scale: "workers", Plugin: "webhook", Locality: "dc2",
				Direction: "up", Amount: 2, Count: 10, At: at, Outcome: state.OutcomeFailed, Finished: at}})
			for range tc.others {
				at := h.now().Add(-time.Hour)
				mustApply(t, h, state.RecordScaleAction{Action: state.ScaleAction{Policy: "other", Scale: "s", Plugin: "webhook", Locality: "dc9",
					Direction: "up", Amount: 1, Count: 3, At: at, Outcome: state.OutcomeFailed, Finished: at}})
			}
			h.run(h.hotForecasts())
			bt.mu.Lock()
			defer bt.mu.Unlock()
			if len(bt.actions) != 1 || bt.actions[0].Count != tc.want || bt.actions[0].Amount != 1 {
				t.Errorf("actions %+v; want one, up by 1 to %d", bt.actions, tc.want)
			}
		})
	}
}

// TestScaleCountWithinMinAndMax: the count an action carries is the
// target's count plus the amount, cut to the block's min and max; the
// amount is the planner's step, so the count may move by more (up to
// min) or less (down to max) than it.
func TestScaleCountWithinMinAndMax(t *testing.T) {
	for _, tc := range []struct {
		name       string
		min, count int
		hot        float64 // dc2's forecast cpu: 95% asks for one node, 200% for three
		want       int
		amount     int
	}{
		{"raised to min", 3, 0, 95, 3, 1},
		{"the count plus the amount", 0, 4, 95, 5, 1},
		{"cut to max", 0, 9, 200, 11, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pols := strings.Replace(actPolicies, "    min      = 0\n    max      = 10\n", fmt.Sprintf("    min      = %d\n    max      = 11\n", tc.min), 1)
			if pols == actPolicies {
				t.Fatal("the test's policies have no scale block to change")
			}
			h := newHarness(t, actScenario, pols)
			h.fake.count = tc.count
			fc := h.hotForecasts()
			for i := range fc {
				if fc[i].Locality == "dc2" && fc[i].Metric == "cpu" {
					for k := range fc[i].Planning {
						fc[i].Planning[k] = tc.hot
					}
				}
			}
			h.run(fc)
			h.fake.mu.Lock()
			defer h.fake.mu.Unlock()
			if len(h.fake.actions) != 1 || h.fake.actions[0].Count != tc.want || h.fake.actions[0].Amount != tc.amount {
				t.Errorf("actions %+v; want one, up by %d, to %d", h.fake.actions, tc.amount, tc.want)
			}
		})
	}
}
