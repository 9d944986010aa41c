// Package targettest is the conformance suite every scale target runtime
// passes: each plugin's tests call Run with a Fixture that builds the
// target over a system it can observe and misdirect (a simulated Nomad, an
// HTTP server, a script), and the suite checks the behaviour the
// coordinator relies on.
//
// It is imported by tests only and must never be used by the agent.
package targettest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/foreshape/foreshape/plugins/target"
)

// Behaviour is how the system answers the target's next actions.
type Behaviour int

// The behaviours a fixture must be able to produce.
const (
	// Accept: actions succeed and change the count.
	Accept Behaviour = iota
	// Refuse: the system answers and declines (Nomad's 4xx, a webhook's
	// 4xx, a command exiting with exec.ExitRefused).
	Refuse
	// Fail: the system cannot act (Nomad's or a webhook's 5xx, a command
	// that fails).
	Fail
	// Hang: the system does not answer.
	Hang
)

func (b Behaviour) String() string {
	return [...]string{"accept", "refuse", "fail", "hang"}[b]
}

// System is the scaled system as the test sees it.
type System interface {
	// Count is the system's count now.
	Count(t *testing.T) int
	// Received returns what the system saw of every accepted action,
	// oldest first, as payloads (fields a system does not carry are zero).
	Received(t *testing.T) []target.Payload
	// Behave sets how the system answers from now on.
	Behave(t *testing.T, b Behaviour)
}

// Fixture builds a target over a fresh system.
type Fixture interface {
	// New returns a target over a system whose count is initial. Its own
	// timeouts should be generous (seconds): a loaded test machine may
	// take hundreds of milliseconds to answer, and the suite gives up on
	// a hanging system itself, after a second.
	New(t *testing.T, initial int) (target.Target, System)
	// CarriesAmount reports whether the system sees the action's amount
	// (webhook and exec do; Nomad sees only the new count).
	CarriesAmount() bool
}

// action returns a valid action from count from to count to.
func action(id string, from, to int) target.Action {
	a := target.Action{ID: id, Policy: "web", Scale: "more", Locality: "dc2", Direction: target.Up,
		Amount: to - from, Count: to, Min: 0, Max: 20,
		Reason: fmt.Sprintf("p90 cpu in dc2 crosses 80%% at 12:20; %s", id),
		Time:   time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)}
	if to < from {
		a.Direction, a.Amount = target.Down, from-to
	}
	return a
}

// Run runs the conformance suite against f.
func Run(t *testing.T, f Fixture) {
	t.Run("ScaleUpAndDown", func(t *testing.T) {
		tg, sys := f.New(t, 2)
		ctx := context.Background()
		for i, to := range []int{5, 3} {
			a := action(fmt.Sprintf("scale-%d", i), sys.Count(t), to)
			res, err := tg.Scale(ctx, a)
			if err != nil {
				t.Fatalf("scale to %d: %v", to, err)
			}
			if res.Count != to || res.Attempts < 1 {
				t.Errorf("result = %+v, want count %d and an attempt", res, to)
			}
			if got := sys.Count(t); got != to {
				t.Errorf("system count = %d after scaling to %d", got, to)
			}
			recv := sys.Received(t)
			if len(recv) != i+1 {
				t.Fatalf("system received %d actions, want %d", len(recv), i+1)
			}
			checkPayload(t, recv[i], a, f.CarriesAmount())
			st, err := tg.Status(ctx)
			if err != nil {
				t.Fatalf("status: %v", err)
			}
			if st.CountKnown && st.Count != to {
				t.Errorf("status count = %d, want %d", st.Count, to)
			}
			if !st.CountKnown && st.Count != 0 {
				t.Errorf("status count %d given without CountKnown", st.Count)
			}
		}
	})

	t.Run("RepeatedActionScalesOnce", func(t *testing.T) {
		tg, sys := f.New(t, 1)
		a := action("again", 1, 4)
		for range 2 {
			if _, err := tg.Scale(context.Background(), a); err != nil {
				t.Fatal(err)
			}
		}
		if got := sys.Count(t); got != 4 {
			t.Errorf("count = %d after the same action twice, want 4", got)
		}
	})

	for _, tc := range []struct {
		b    Behaviour
		kind target.Kind
		want error
	}{
		{Refuse, target.Refused, target.ErrRefused},
		{Fail, target.Failed, target.ErrFailed},
		{Hang, target.Timeout, target.ErrTimeout},
	} {
		t.Run("Behaviour="+tc.b.String(), func(t *testing.T) {
			tg, sys := f.New(t, 2)
			sys.Behave(t, tc.b)
			// A refusal or a failure is told apart by the system's answer,
			// however long a loaded machine takes to give it; only a hang
			// needs the caller to give up.
			wait := time.Minute
			if tc.b == Hang {
				wait = time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_, err := tg.Scale(ctx, action("x", 2, 3))
			var te *target.Error
			if !errors.As(err, &te) {
				t.Fatalf("err = %v (%T), want a *target.Error", err, err)
			}
			if te.Kind != tc.kind || !errors.Is(err, tc.want) || target.KindOf(err) != tc.kind {
				t.Errorf("err = %v, kind %s; want %s", err, te.Kind, tc.kind)
			}
			for _, other := range []error{target.ErrRefused, target.ErrFailed, target.ErrTimeout} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("err %v also matches %v", err, other)
				}
			}
			if te.Reason == "" || te.Plugin == "" || te.Attempts < 1 {
				t.Errorf("error lacks a plugin, reason or attempt count: %+v", te)
			}
			sys.Behave(t, Accept)
			if got := sys.Count(t); got != 2 {
				t.Errorf("count = %d after a %s action, want 2", got, tc.b)
			}
		})
	}

	t.Run("InvalidActionsDoNothing", func(t *testing.T) {
		tg, sys := f.New(t, 2)
		for _, change := range []func(*target.Action){
			func(a *target.Action) { a.ID = "" },
			func(a *target.Action) { a.Direction = "sideways" },
			func(a *target.Action) { a.Amount = 0 },
			func(a *target.Action) { a.Count = -1 },
			func(a *target.Action) { a.Count = 21 },
		} {
			a := action("bad", 2, 3)
			change(&a)
			_, err := tg.Scale(context.Background(), a)
			if !errors.Is(err, target.ErrRefused) || !errors.Is(err, target.ErrInvalidAction) {
				t.Errorf("action %+v: err = %v, want a refusal as invalid", a, err)
			}
		}
		if recv := sys.Received(t); len(recv) != 0 || sys.Count(t) != 2 {
			t.Errorf("invalid actions reached the system: %d received, count %d", len(recv), sys.Count(t))
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		tg, sys := f.New(t, 2)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := tg.Scale(ctx, action("late", 2, 3))
		if !errors.Is(err, target.ErrTimeout) || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want a timeout wrapping context.Canceled", err)
		}
		if sys.Count(t) != 2 {
			t.Errorf("count changed under a cancelled context")
		}
	})

	t.Run("StatusOfAFreshSystem", func(t *testing.T) {
		tg, _ := f.New(t, 3)
		st, err := tg.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.CountKnown && st.Count != 3 {
			t.Errorf("status = %+v, want count 3", st)
		}
		if !st.Ready && st.Reason == "" {
			t.Errorf("not ready without a reason: %+v", st)
		}
	})
}

func checkPayload(t *testing.T, got target.Payload, a target.Action, amount bool) {
	t.Helper()
	want := a.Payload()
	if !amount {
		want.Amount, want.Min, want.Max, want.Time = got.Amount, got.Min, got.Max, got.Time
	}
	if got.Amount != want.Amount {
		t.Errorf("system saw amount %d, want %d", got.Amount, want.Amount)
	}
	if got.RequestID != want.RequestID || got.Policy != want.Policy || got.Scale != want.Scale || got.Locality != want.Locality ||
		got.Direction != want.Direction || got.Count != want.Count || got.Reason != want.Reason ||
		got.Min != want.Min || got.Max != want.Max || !got.Time.Equal(want.Time) {
		t.Errorf("system saw %+v\nwant            %+v", got, want)
	}
}
