package migrate

import (
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/state"
)

// TestReleaseNomadDoesNotAnswerIsMadeAgain: reservation rs-404 is
// released (its request cancelled by an operator) while Nomad does not
// answer the placeholder's deregistration (the connection drops: a Nomad
// server restarting), neither the release's call nor the reaper's right
// after it. The error of a call Nomad did not answer names the URL it
// went to, which holds the placeholder's job ID, here with "404" in it:
// read as Nomad's 404 (the job gone), both calls were recorded done, a
// reap decision said the placeholder was removed, and no pass tried
// again, so the placeholder held its room in Nomad for good. Counted
// failed, the reaper deregisters it once Nomad answers again.
func TestReleaseNomadDoesNotAnswerIsMadeAgain(t *testing.T) {
	var down atomic.Bool
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			if down.Load() && r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v1/job/"+state.PlaceholderPrefix) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				conn.Close() // no answer
				return
			}
			rp.ServeHTTP(w, r)
		})
	})
	// Reservations rs-1 … rs-403 came and went.
	for range 403 {
		mustApply(t, h, state.PutReservation{Reservation: state.Reservation{Request: "mr-0", Locality: "dc2",
			State: state.ReservationReleased, Until: h.now().Add(-48 * time.Hour)}})
	}
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(h.flatForecasts(79)) // reserves; dc2 too full for the move to start
	res, ok := h.local.FSM.Act().ReservationFor(id)
	if !ok || res.ID != "rs-404" || res.State != state.ReservationHeld {
		t.Fatalf("reservation %+v; want rs-404 held", res)
	}
	h.step(20 * time.Second)
	mustApply(t, h, state.CancelRequest{ID: id, At: h.now(), Reason: "cancelled by an operator"})
	down.Store(true)
	downAt := h.now()
	h.run(h.flatForecasts(79)) // releases, and reaps, while Nomad does not answer
	down.Store(false)
	for _, in := range h.local.FSM.Intents() {
		if in.Kind == state.IntentDeregisterHold && in.Closed.Equal(downAt) && in.Outcome == state.OutcomeDone {
			t.Errorf("intent %s closed done while Nomad did not answer", in.ID)
		}
	}
	for _, d := range h.local.FSM.Decisions() {
		if d.Kind == "reap" && d.Time.Equal(downAt) {
			t.Errorf("reap decision while Nomad did not answer: %s", d.Reason)
		}
	}
	for range 3 {
		h.step(time.Minute)
		h.run(h.flatForecasts(79))
	}
	if _, _, err := h.client.Jobs().Info(res.Job, nil); err == nil {
		t.Errorf("placeholder %s still registered after its reservation's release; want it deregistered once Nomad answers", res.Job)
	}
}
