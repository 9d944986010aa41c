package migrate

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// quorumLate is a leader whose leadership check fails once, for the first
// call of an intent of kind, as cluster.Node's does when no quorum
// answered within two heartbeat timeouts, while it leads on: every other
// check, and every Apply, succeeds.
type quorumLate struct {
	state  Reader
	kind   state.IntentKind
	mu     sync.Mutex
	failed string // the intent whose check failed
}

func (l *quorumLate) VerifyLeader(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed == "" {
		for _, in := range l.state.Act().OpenIntents {
			if in.Kind == l.kind {
				l.failed = in.ID
				return errors.New("cluster: verify leader: no quorum answered within 2s: node is not the leader")
			}
		}
	}
	return ctx.Err()
}

// committedApplier commits the first command lose says of, then answers
// it with an error, as a Raft apply whose wait timed out and which
// committed all the same.
type committedApplier struct {
	inner Applier
	lose  func(state.Command) bool
	mu    sync.Mutex
	lost  bool
}

func (a *committedApplier) Apply(ctx context.Context, cmd state.Command) (state.Result, error) {
	res, err := a.inner.Apply(ctx, cmd)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil && !a.lost && a.lose(cmd) {
		a.lost = true
		return state.Result{}, errors.New("cluster: apply: context deadline exceeded (the command may still be committed)")
	}
	return res, err
}

// openOf returns the open intents of kind.
func openOf(fsm Reader, kind state.IntentKind) []state.Intent {
	var out []state.Intent
	for _, in := range fsm.Act().OpenIntents {
		if in.Kind == kind {
			out = append(out, in)
		}
	}
	return out
}

// TestScaleLeftOpenWithinATermScalesAgain: a scale action's intent stays
// open without its term ending, once because the leadership check before
// its call failed (no quorum answered in time; the call was not made),
// once because its open committed but its Apply failed (the call was
// not made), once because its outcome could not be recorded (the call
// was made).
// The leader's next pass closes it with what it knows (not done; done),
// and the block scales on: after the back-off of the failed one, after
// the cooldown of the done one. Before, the open intent read as the
// target's call in flight, and the block scaled nothing more for as long
// as the leader led.
func TestScaleLeftOpenWithinATermScalesAgain(t *testing.T) {
	for _, tc := range []struct {
		name      string
		leader    bool // the leadership check fails
		lostOpen  bool // the open commits, its Apply fails; else the close fails
		outcome   state.IntentOutcome
		wantCalls int
	}{
		{name: "leadership check failed", leader: true, outcome: state.OutcomeNotDone, wantCalls: 1},
		{name: "open committed, its answer lost", lostOpen: true, outcome: state.OutcomeNotDone, wantCalls: 1},
		{name: "outcome not recorded", outcome: state.OutcomeDone, wantCalls: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fa *failingApplier
			h := newHarness(t, actScenario, actPolicies, func(c *Config) {
				if tc.leader {
					c.Leader = &quorumLate{state: c.State, kind: state.IntentScaleTarget}
					return
				}
				if tc.lostOpen {
					c.Apply = &committedApplier{inner: c.Apply, lose: func(cmd state.Command) bool {
						o, ok := cmd.(state.OpenIntent)
						return ok && o.Intent.Kind == state.IntentScaleTarget
					}}
					return
				}
				closed := false
				fa = &failingApplier{inner: c.Apply, fail: func(cmd state.Command) bool {
					cl, ok := cmd.(state.CloseIntent)
					if ok && !closed && strings.HasPrefix(cl.ID, string(state.IntentScaleTarget)+"/") {
						closed = true
						return true
					}
					return false
				}}
				c.Apply = fa
			})
			h.run(h.hotForecasts())
			first := h.fake.calls()
			if n := len(openOf(h.local.FSM, state.IntentScaleTarget)); n != 1 {
				t.Fatalf("%d scale intents open after the first pass; want the one left open", n)
			}
			for range 30 {
				h.step(time.Minute)
				h.run(h.hotForecasts())
			}
			if got := h.fake.calls(); got < tc.wantCalls {
				t.Errorf("%d target calls (%d in the first pass); want %d at least: the block scales on", got, first, tc.wantCalls)
			}
			if open := openOf(h.local.FSM, state.IntentScaleTarget); len(open) > 0 {
				t.Errorf("scale intents still open: %+v", open)
			}
			var left []state.Intent
			for _, in := range h.local.FSM.Intents() {
				if in.Kind == state.IntentScaleTarget && strings.HasPrefix(in.Error, leftOpenNote) {
					left = append(left, in)
				}
			}
			if len(left) != 1 || left[0].Outcome != tc.outcome {
				t.Errorf("intents closed by a later pass %+v; want one, %s", left, tc.outcome)
			}
			for _, d := range h.c.LastPlan().Decisions {
				if strings.Contains(d.Reason, "in flight since") {
					t.Errorf("decision %s: %s", d.Kind, d.Reason)
				}
			}
		})
	}
}

// TestHandOverLeftOpenWithinATermIsMade: the leadership check before a
// move's hand-over fails (no quorum answered in time) while the leader
// leads on: no hand-over is made, and the attempt fails. The next pass
// closes the hand-over's intent not done, and the next attempt hands the
// placeholder's room over before its stop, as for the other allocation,
// none twice. Before, the open intent read as the hand-over made: the
// next attempt stopped the allocation without it, and its replacement
// went on without its room (the placeholder still held it).
func TestHandOverLeftOpenWithinATermIsMade(t *testing.T) {
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Leader = &quorumLate{state: c.State, kind: state.IntentScaleHold}
	})
	node := h.nodeID("a-")
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: node, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(30)) // reserves
	res, ok := h.local.FSM.Act().ReservationFor(id)
	if !ok {
		t.Fatalf("no reservation for %s", id)
	}
	h.step(30 * time.Second)
	h.run(h.flatForecasts(30)) // starts: the hand-over's check fails
	if n := len(openOf(h.local.FSM, state.IntentScaleHold)); n != 1 {
		t.Fatalf("%d hand-over intents open; want the one whose check failed", n)
	}
	got := h.moveToDone(id)
	if got.State != state.RequestDone {
		t.Fatalf("request %s: %s", got.State, got.Reason)
	}
	// Each allocation's stop follows a hand-over made for it.
	handed := map[string]int{}
	for _, in := range h.local.FSM.Intents() {
		if in.Kind == state.IntentScaleHold && in.Outcome == state.OutcomeDone {
			handed[strings.SplitN(in.ID, "/", 3)[2]]++
		}
	}
	for _, m := range got.Moves {
		n := 0
		for k, c := range handed {
			if strings.HasPrefix(k, m.Alloc+"/") {
				n += c
			}
		}
		if n != 1 {
			t.Errorf("allocation %s: %d hand-overs made; want 1 (%v)", m.Alloc, n, handed)
		}
	}
	// Nomad got each stop right after a hand-over, one per move.
	calls, scales := h.mutating(), 0
	for i, call := range calls {
		if call == "PUT /v1/job/"+res.Job+"/scale" {
			scales++
		}
		if strings.HasSuffix(call, "/stop") && (i == 0 || calls[i-1] != "PUT /v1/job/"+res.Job+"/scale") {
			t.Errorf("%s without a hand-over right before it (calls %v)", call, calls)
		}
	}
	if scales != len(got.Moves) {
		t.Errorf("%d scale calls on the placeholder %s; want one per move (%d)", scales, res.Job, len(got.Moves))
	}
	if open := openOf(h.local.FSM, state.IntentScaleHold); len(open) > 0 {
		t.Errorf("hand-over intents still open: %+v", open)
	}
}
