package migrate

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/internal/syncbuf"
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
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		direct := c.Nomad
		interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
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
		})
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

// TestUnplaceablePlaceholderDoesNotScale: the agent's reserve.driver is
// podman, which no node runs. Nomad accepts the placeholder and filters
// out every node of dc2 ("missing drivers"), none short of room: scaling
// dc2 would add nodes that lack podman too. Past shape.PlaceholderGrace
// the coordinator reads why from the placeholder's evaluations and issues
// no scale action; the request does not move without its room and waits,
// its reason naming the locality, Nomad's filter reasons with counts and
// what to check; one decision says so every ten minutes, and the agent's
// log says it once at ERROR. Once the operator sets reserve.driver to a
// driver the nodes run, the placeholder registered with podman is released
// and placed anew, and the request moves. TestBlockedPlaceholderScales is
// the other case: dc2 full, it scales.
func TestUnplaceablePlaceholderDoesNotScale(t *testing.T) {
	var logs syncbuf.Buffer
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Placeholder = Placeholder{Driver: "podman", Config: map[string]any{"image": "registry.k8s.io/pause:3.10"}}
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: io.MultiWriter(testWriter{t}, &logs), Level: hclog.Debug})
	})
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(shape.PlaceholderGrace+3*time.Minute), nil)
	res, ok := h.local.FSM.ReservationFor(id)
	if !ok || res.State != state.ReservationHeld || res.Unplaced == 0 {
		t.Fatalf("reservation %+v (found %v); the test needs a held placeholder Nomad cannot place", res, ok)
	}
	check := func(wantDecisions int) {
		t.Helper()
		r := h.request(id)
		if r.State == state.RequestRunning || r.State.Terminal() || countStops(h, a.ID) != 0 {
			t.Errorf("%s %s (%s): moved without its room", id, r.State, r.Reason)
		}
		for _, want := range []string{"placeholder cannot be placed", "no node of dc2 can run placeholder " + res.Job,
			"filtered out all 2 nodes", "missing drivers: 2", `task driver "podman"`, "reserve.driver", "reserve.config",
			"not scaled for", "does not move without its room", "waits"} {
			if !strings.Contains(r.Reason, want) {
				t.Errorf("%s's reason %q lacks %q", id, r.Reason, want)
			}
		}
		if strings.Contains(r.Reason, "reservation does not fit") || strings.Contains(r.Reason, "scaling") {
			t.Errorf("%s's reason %q: want no scale for a placeholder no node can take", id, r.Reason)
		}
		if n := h.fake.calls(); n != 0 {
			t.Errorf("%d scale actions for a placeholder no node can take; actions %+v", n, h.local.FSM.Act().ScaleActions)
		}
		var got []state.Decision
		for _, d := range h.local.FSM.Decisions() {
			if d.Kind == shape.KindScale {
				t.Errorf("scale decision %+v", d)
			}
			if d.Kind == shape.KindReserve && d.Reservation == res.ID && strings.Contains(d.Reason, "placeholder cannot be placed") {
				got = append(got, d)
			}
		}
		if len(got) != wantDecisions {
			t.Errorf("%d decisions that the placeholder cannot be placed; want %d (once per ten minutes): %+v", len(got), wantDecisions, got)
		}
		for _, d := range got {
			if d.Locality != "dc2" || d.Request != id || !strings.Contains(d.Reason, "missing drivers: 2") || !strings.Contains(d.Reason, "does not scale") {
				t.Errorf("decision %+v", d)
			}
		}
		if n := strings.Count(logs.String(), "[ERROR] migrate: no node can take a placeholder"); n != 1 {
			t.Errorf("the agent's log says %d times at ERROR that no node can take the placeholder; want once", n)
		}
	}
	check(1)
	// Ten minutes later: one decision more, no scale, no second error.
	h.passUntil(h.now().Add(10*time.Minute), nil)
	check(2)

	// The operator sets reserve.driver to one the nodes run: the
	// placeholder still registered with podman is released and placed
	// anew, and the request moves, without a scale action.
	h.c.cfg.Placeholder = Placeholder{Driver: "raw_exec", Config: map[string]any{"command": "/bin/sleep", "args": []string{"infinity"}}}
	h.passUntil(h.now().Add(10*time.Minute), nil)
	var old state.Reservation
	for _, r := range h.local.FSM.Act().Reservations {
		if r.ID == res.ID {
			old = r
		}
	}
	if old.State != state.ReservationReleased || !strings.Contains(old.Reason, `task driver "podman"`) {
		t.Errorf("podman placeholder's reservation %+v; want it released saying its driver is no longer reserve.driver", old)
	}
	if r := h.request(id); r.State != state.RequestDone {
		t.Errorf("%s %s (%s) after reserve.driver was set to raw_exec; want it done", id, r.State, r.Reason)
	}
	if n := h.fake.calls(); n != 0 {
		t.Errorf("%d scale actions; want none", n)
	}
}

// TestUnplaceableWithTheDriverNowScales: a placeholder's blocked
// evaluation says its nodes lack its driver, as it was created (Nomad
// re-blocks it unwritten), but a node of the locality now reports the
// driver healthy (its client installed it): the metric no longer holds,
// and the reservation counts as one that does not fit, which a scale
// action may bring room for.
func TestUnplaceableWithTheDriverNowScales(t *testing.T) {
	var installed atomic.Bool
	var direct *nomadapi.Client
	h := newHarness(t, actScenario, actPolicies, func(c *Config) {
		c.Placeholder = Placeholder{Driver: "podman", Config: map[string]any{"image": "registry.k8s.io/pause:3.10"}}
		direct = interpose(t, c, func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
			if !installed.Load() || r.Method != http.MethodGet || r.URL.Path != "/v1/nodes" {
				rp.ServeHTTP(w, r)
				return
			}
			// The node list as Nomad gives it once a dc2 client
			// fingerprinted podman.
			r.Header.Del("Accept-Encoding")
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			var nodes []*nomadapi.NodeListStub
			if err := json.Unmarshal(rec.Body.Bytes(), &nodes); err != nil {
				t.Errorf("node list: %v", err)
			}
			for _, n := range nodes {
				if n.Datacenter == "dc2" && n.Drivers != nil {
					n.Drivers["podman"] = &nomadapi.DriverInfo{Detected: true, Healthy: true}
					break
				}
			}
			answerJSON(t, w, rec, nodes)
		})
	})
	a := h.allocs("web")[0]
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: a.ID, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	h.passUntil(h.now().Add(shape.PlaceholderGrace+3*time.Minute), nil)
	if r := h.request(id); !strings.Contains(r.Reason, "missing drivers") || h.fake.calls() != 0 {
		t.Fatalf("%s's reason %q, %d scale actions; the test needs a placeholder taken for one no node can take", id, r.Reason, h.fake.calls())
	}
	// The client's new fingerprint is a node update: the node table's
	// index moves (here by taking b-2 out of scheduling and back).
	installed.Store(true)
	for _, elig := range []bool{false, true} {
		if _, err := direct.Nodes().ToggleEligibility(h.nodeID("b-2"), elig, nil); err != nil {
			t.Fatal(err)
		}
	}
	h.passUntil(h.now().Add(2*time.Minute), nil)
	if r := h.request(id); strings.Contains(r.Reason, "missing drivers") || h.fake.calls() == 0 {
		t.Errorf("%s's reason %q, %d scale actions; want it counted as not fitting, and scaled for", id, r.Reason, h.fake.calls())
	}
}
