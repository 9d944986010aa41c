package migrate

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// failingApplier is a leader's applier whose commands that fail names
// fail once each (a Raft apply that times out), while it keeps leading:
// every other command, and a later one alike, commits.
type failingApplier struct {
	inner  Applier
	fail   func(state.Command) bool
	mu     sync.Mutex
	failed int
}

func (f *failingApplier) Apply(ctx context.Context, cmd state.Command) (state.Result, error) {
	f.mu.Lock()
	if f.fail(cmd) {
		f.failed++
		f.mu.Unlock()
		return state.Result{}, errors.New("timed out enqueuing operation")
	}
	f.mu.Unlock()
	return f.inner.Apply(ctx, cmd)
}

// TestPlannedReservationOfALeaderThatKeepsLeading: place records a
// reservation planned, registers its placeholder (or Nomad refuses it)
// and marks it held (or released); that last update fails, and the leader
// keeps leading. The next pass puts the reservation right: one whose
// placeholder was registered is held and handed over, the same
// placeholder, none registered anew; one whose placeholder Nomad refused
// is released and a new one placed. Either way the move is done within
// minutes (before: the reservation stayed planned, and its request
// reserving, until reserve.ttl, an hour: only a new term's start settled
// planned reservations).
func TestPlannedReservationOfALeaderThatKeepsLeading(t *testing.T) {
	for _, tc := range []struct {
		name      string
		refuse    bool // Nomad refuses the first placeholder
		mark      state.ReservationState
		registers int
		released  string
	}{
		{name: "registered, marking it held fails", mark: state.ReservationHeld, registers: 1},
		{name: "refused, marking it released fails", refuse: true, mark: state.ReservationReleased, registers: 2,
			released: "its placeholder was not registered (failed: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fa *failingApplier
			var refused bool
			h := newHarness(t, actScenario, actPolicies, func(cfg *Config) {
				once := false
				fa = &failingApplier{inner: cfg.Apply, fail: func(c state.Command) bool {
					p, ok := c.(state.PutReservation)
					if ok && !once && p.Reservation.State == tc.mark {
						once = true
						return true
					}
					return false
				}}
				cfg.Apply = fa
				if tc.refuse {
					interpose(t, cfg, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
						if r.Method == http.MethodPut && r.URL.Path == "/v1/jobs" && !refused {
							refused = true
							http.Error(w, "Permission denied", http.StatusForbidden)
							return
						}
						rp.ServeHTTP(w, r)
					})
				}
			})
			id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: h.nodeID("a-"), Target: "dc2"})
			if err != nil {
				t.Fatal(err)
			}
			h.run(h.flatForecasts(30))
			first, ok := h.local.FSM.Act().ReservationFor(id)
			if !ok || first.State != state.ReservationPlanned || fa.failed != 1 {
				t.Fatalf("reservation %+v (found %v), %d updates failed; the test needs it left planned by one failed update", first, ok, fa.failed)
			}
			h.step(30 * time.Second)
			h.passUntil(h.now().Add(10*time.Minute), nil)
			if r := h.request(id); r.State != state.RequestDone {
				t.Errorf("request %s: %s; want done within ten minutes", r.State, r.Reason)
			}
			for _, res := range h.local.FSM.Act().Reservations {
				if res.ID != first.ID {
					continue
				}
				switch {
				case res.State == state.ReservationPlanned:
					t.Errorf("reservation %s still planned", res.ID)
				case tc.released != "" && (res.State != state.ReservationReleased || !strings.Contains(res.Reason, tc.released)):
					t.Errorf("reservation %s %s (%s); want released, saying %q", res.ID, res.State, res.Reason, tc.released)
				case tc.released == "" && res.Placed.IsZero():
					t.Errorf("reservation %s %s never held", res.ID, res.State)
				}
			}
			registers := 0
			for _, in := range h.local.FSM.Intents() {
				if in.Kind == state.IntentRegisterHold {
					registers++
				}
			}
			if registers != tc.registers {
				t.Errorf("%d placeholders announced; want %d", registers, tc.registers)
			}
			if tc.released != "" && len(h.decisionsSaying(id, "release "+first.ID)) != 1 {
				t.Errorf("decisions releasing %s: %v; want one", first.ID, h.decisionsSaying(id, "release "+first.ID))
			}
		})
	}
}
