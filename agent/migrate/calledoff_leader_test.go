package migrate

import (
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// TestWindowCalledOffIsSaidOnceAcrossALeaderChange: dc1's maintenance
// window took a-1 and a-2 out of scheduling as its requests were queued
// (reservation caps keep them waiting); at 06:14 an operator cancels every
// one of them, calling the window off. The leader says so and gives a-1
// back, but Nomad refuses a-2's give-back (a token that lost node:write
// for it); then the leader changes, and the next one, Nomad answering
// again, gives a-2 back. Whether the window's called-off decision was made
// was kept in the leader's memory only: the next leader said it again.
// Now it is said once.
func TestWindowCalledOffIsSaidOnceAcrossALeaderChange(t *testing.T) {
	scenario := strings.Replace(actScenario, "  datacenter = \"dc1\"\n  count      = 1\n", "  datacenter = \"dc1\"\n  count      = 2\n", 1)
	var refuse atomic.Value // the node ID whose give-back Nomad refuses
	refuse.Store("")
	h := newHarness(t, scenario, cappedWindowPolicies(), func(c *Config) {
		interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			if id := refuse.Load().(string); id != "" && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/node/"+id+"/") {
				http.Error(w, "Permission denied", http.StatusForbidden)
				return
			}
			rp.ServeHTTP(w, r)
		})
	})
	a1, a2 := h.nodeID("a-1"), h.nodeID("a-2")
	h.passUntil(time.Date(2026, 1, 5, 6, 14, 0, 0, time.UTC), nil)
	if h.eligibility(a1) != nomadapi.NodeSchedulingIneligible || h.eligibility(a2) != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s, a-2 %s at 06:14 while the window's requests wait; the test needs both out", h.eligibility(a1), h.eligibility(a2))
	}
	cancelled := 0
	for _, x := range h.local.FSM.Act().Requests {
		if x.Origin != "schedule" {
			continue
		}
		if !x.State.Queued() {
			t.Fatalf("%s %s at 06:14; the test needs every request of the window waiting", x.ID, x.State)
		}
		mustApply(t, h, state.CancelRequest{ID: x.ID, At: h.now(), Reason: OperatorCancel})
		cancelled++
	}
	if cancelled == 0 {
		t.Fatal("no window request queued by 06:14")
	}
	refuse.Store(a2)
	h.quarterPass()
	if h.eligibility(a1) != nomadapi.NodeSchedulingEligible || h.eligibility(a2) != nomadapi.NodeSchedulingIneligible {
		t.Fatalf("a-1 %s, a-2 %s after the window was called off and a-2's give-back refused; the test needs a-1 back, a-2 out", h.eligibility(a1), h.eligibility(a2))
	}
	said := func() []string {
		var out []string
		for _, d := range h.local.FSM.Decisions() {
			if d.Kind == "restore" && strings.HasPrefix(d.Reason, "drain window dc1/maintenance from 06:30 UTC called off") {
				out = append(out, d.Time.Format("15:04:05")+" "+d.Request)
			}
		}
		return out
	}
	if got := said(); len(got) != 1 {
		t.Fatalf("called-off decisions %q before the leader change; the test needs one", got)
	}
	// A new leader: a new coordinator on the same state.
	refuse.Store("")
	h.c = newCoordinatorOn(t, h)
	if err := h.c.Begin(h.ctx, h.now()); err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(3*time.Minute), nil)
	if got := h.eligibility(a2); got != nomadapi.NodeSchedulingEligible {
		t.Errorf("a-2 %s after the next leader's passes; want it given back", got)
	}
	if got := said(); len(got) != 1 {
		t.Errorf("called-off decisions %q; want one, across the leader change", got)
	}
}
