package migrate

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// collecting routes the coordinator's Nomad calls through a proxy that
// answers as if Nomad had collected the allocation gone names (its
// garbage collection of an ended allocation): missing from the list, 404
// when read.
func collecting(t *testing.T, gone *atomic.Value) func(*Config) {
	return func(c *Config) {
		interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			id, _ := gone.Load().(string)
			switch {
			case id != "" && r.Method == http.MethodGet && r.URL.Path == "/v1/allocation/"+id:
				http.Error(w, "alloc not found", http.StatusNotFound)
			case id != "" && r.Method == http.MethodGet && r.URL.Path == "/v1/allocations":
				r.Header.Del("Accept-Encoding")
				rec := httptest.NewRecorder()
				rp.ServeHTTP(rec, r)
				var list []map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
					t.Errorf("allocation list: %v", err)
				}
				kept := list[:0]
				for _, a := range list {
					if a["ID"] != id {
						kept = append(kept, a)
					}
				}
				answerJSON(t, w, rec, kept)
			default:
				rp.ServeHTTP(w, r)
			}
		})
	}
}

// TestAllocationCollectedWhileQueued: an operator stops a queued
// request's allocation (Nomad replaces it) and Nomad collects the stopped
// one before the request starts. The request is cancelled when it would
// start, saying its allocation is gone from Nomad, using no attempt and
// stopping nothing (before, each start failed reading the allocation, and
// the request failed after three attempts on a 404).
func TestAllocationCollectedWhileQueued(t *testing.T) {
	var gone atomic.Value
	h := newHarness(t, actScenario, actPolicies, collecting(t, &gone))
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Allocations().Stop(&nomadapi.Allocation{ID: a.ID}, nil); err != nil {
		t.Fatal(err)
	}
	h.step(30 * time.Second)
	gone.Store(a.ID)
	h.passUntil(h.now().Add(5*time.Minute), nil)
	r := h.request(id)
	if r.State != state.RequestCancelled || r.Attempts != 0 || !strings.Contains(r.Reason, "gone from Nomad") {
		t.Errorf("%s %s after %d attempts: %s; want cancelled, saying its allocation is gone from Nomad", id, r.State, r.Attempts, r.Reason)
	}
	if n := countStops(h, a.ID); n != 1 {
		t.Errorf("%s stopped %d times; want once, by the operator", a.ID, n)
	}
	if res, ok := h.local.FSM.ReservationFor(id); ok {
		t.Errorf("reservation %s still %s", res.ID, res.State)
	}
}
