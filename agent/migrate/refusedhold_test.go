package migrate

import (
	"net/http"
	"net/http/httputil"
	"testing"

	"github.com/foreshape/foreshape/agent/state"
)

// TestRefusedPlaceholderIsReleasedWhenRefused: a reservation whose
// placeholder Nomad refuses is released at once, and records when (its
// Until, as every release does, and what /v1/reservations shows as its
// until), not the end it was planned to be held until, a time still to
// come that nothing holds it to.
func TestRefusedPlaceholderIsReleasedWhenRefused(t *testing.T) {
	refused := false
	h := newHarness(t, actScenario, actPolicies, func(cfg *Config) {
		interpose(t, cfg, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && r.URL.Path == "/v1/jobs" && !refused {
				refused = true
				http.Error(w, "Permission denied", http.StatusForbidden)
				return
			}
			rp.ServeHTTP(w, r)
		})
	})
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: h.nodeID("a-"), Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	at := h.now()
	h.run(h.flatForecasts(30))
	var res state.Reservation
	ok := false
	for _, r := range h.local.FSM.Act().Reservations {
		if r.Request == id && !ok {
			res, ok = r, true
		}
	}
	if !refused || !ok {
		t.Fatalf("refused %v, reservation %+v (found %v); the test needs a reservation whose placeholder Nomad refused", refused, res, ok)
	}
	if res.State != state.ReservationReleased || !res.Until.Equal(at) {
		t.Errorf("reservation %s %s until %s (%s); want released, until %s, the refusal", res.ID, res.State, res.Until.Format("15:04:05"), res.Reason, at.Format("15:04:05"))
	}
}
