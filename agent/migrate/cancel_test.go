package migrate

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
)

// operatorFirst is an Applier where an operator cancels a request just
// before each cancel the planner decided (one whose reason is a window's
// end) reaches the state machine, as an operator's cancel between the
// plan and its carrying out would.
type operatorFirst struct {
	inner Applier
	mu    sync.Mutex
	raced []string
}

func (o *operatorFirst) Apply(ctx context.Context, cmd state.Command) (state.Result, error) {
	if x, ok := cmd.(state.CancelRequest); ok && strings.Contains(x.Reason, "the window of") {
		if _, err := o.inner.Apply(ctx, state.CancelRequest{ID: x.ID, At: x.At, Reason: "cancelled by an operator"}); err == nil {
			o.mu.Lock()
			o.raced = append(o.raced, x.ID)
			o.mu.Unlock()
		}
	}
	return o.inner.Apply(ctx, cmd)
}

// TestFailedCancelIsNotRecorded: the planner cancels a window's request
// that did not start before its window ended, but an operator cancelled it
// between the plan and its carrying out, so the planner's cancel fails.
// The decision log says only what happened: the planner's cancel decision
// is dropped, not recorded as a cancel that did not take place (before: it
// was recorded whatever the state machine answered).
func TestFailedCancelIsNotRecorded(t *testing.T) {
	var race *operatorFirst
	h := newHarness(t, actScenario, drainStrategy(windowPolicies("")), func(cfg *Config) {
		race = &operatorFirst{inner: cfg.Apply}
		cfg.Apply = race
	})
	mustApply(t, h, state.SetQueuePaused{Paused: true, At: h.now(), By: "test"})
	r := h.windowRequest(func(state.MigrationRequest) bool { return true })
	end := h.windowEnd(r)
	h.passUntil(end.Add(3*time.Minute), nil)
	if len(race.raced) == 0 {
		t.Fatalf("the planner cancelled nothing after the window ended; decisions %+v", h.local.FSM.Decisions())
	}
	for _, id := range race.raced {
		if got := h.request(id); got.State != state.RequestCancelled || got.Reason != "cancelled by an operator" {
			t.Errorf("%s %s (%s); want cancelled by the operator", id, got.State, got.Reason)
		}
	}
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == shape.KindCancel && strings.Contains(d.Reason, "the window of") {
			t.Errorf("decision %+v: a cancel recorded that did not happen", d)
		}
	}
}
