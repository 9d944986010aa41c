package migrate

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
)

// TestBlockedPlaceholderScales: Nomad accepts a reservation's placeholder
// but cannot place it (another job took dc2's room between the pass's read
// of the nodes and the registration). The request does not start without
// its room; once the placeholder has had shape.PlaceholderGrace to run,
// the reservation counts as one that does not fit and the target's scale
// block is scaled, as for a reservation that does not pack; and the
// reason says so.
func TestBlockedPlaceholderScales(t *testing.T) {
	var filled atomic.Bool
	var h *harness
	h = newHarness(t, actScenario, actPolicies, func(c *Config) {
		direct := c.Nomad
		u, err := url.Parse(c.Nomad.Address())
		if err != nil {
			t.Fatal(err)
		}
		rp := httputil.NewSingleHostReverseProxy(u)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && r.URL.Path == "/v1/jobs" && filled.CompareAndSwap(false, true) {
				// Another job fills dc2 just before the placeholder comes.
				j := nomadapi.NewServiceJob("filler", "filler", "global", 70)
				j.Datacenters = []string{"dc2"}
				tg := nomadapi.NewTaskGroup("fill", 2)
				tg.AddTask(nomadapi.NewTask("fill", "raw_exec").SetConfig("command", "/bin/sleep").SetConfig("args", []string{"infinity"}).
					Require(&nomadapi.Resources{CPU: new(3800), MemoryMB: new(7800)}))
				j.AddTaskGroup(tg)
				if _, _, err := direct.Jobs().Register(j, nil); err != nil {
					t.Error(err)
				}
			}
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		c.Nomad = client
	})
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	until := h.now().Add(shape.PlaceholderGrace + 3*time.Minute)
	h.passUntil(until, nil)
	if !filled.Load() {
		t.Fatal("no placeholder registered: the test needs one")
	}
	res, ok := h.local.FSM.ReservationFor(id)
	if !ok || res.State != state.ReservationHeld || res.Unplaced == 0 {
		t.Fatalf("reservation %+v (found %v); the test needs a held placeholder Nomad cannot place", res, ok)
	}
	r := h.request(id)
	if r.State == state.RequestRunning || r.State.Terminal() || countStops(h, a.ID) != 0 {
		t.Errorf("%s %s (%s): moved without its room", id, r.State, r.Reason)
	}
	if !strings.Contains(r.Reason, "reservation does not fit") {
		t.Errorf("%s's reason %q; want it to say its reservation does not fit", id, r.Reason)
	}
	if h.fake.calls() == 0 {
		t.Errorf("no scale action for a reservation Nomad cannot place; decisions %+v", h.local.FSM.Decisions())
	}
}
