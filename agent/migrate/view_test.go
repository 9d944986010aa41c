package migrate

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/state"
)

// countingTransport counts GET requests per path (with "?prefix" when the
// request is an index probe).
type countingTransport struct {
	mu   sync.Mutex
	gets map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet {
		key := r.URL.Path
		if r.URL.Query().Get("prefix") != "" {
			key += "?prefix"
		}
		c.mu.Lock()
		c.gets[key]++
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.gets
	c.gets = map[string]int{}
	return out
}

func TestRefreshReadsOnlyWhatChanged(t *testing.T) {
	ct := &countingTransport{gets: map[string]int{}}
	h := newHarness(t, actScenario, actPolicies, func(cfg *Config) {
		client, err := nomadapi.NewClient(&nomadapi.Config{Address: cfg.Nomad.Address(), HttpClient: &http.Client{Transport: ct}})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Nomad = client
	})
	probes := map[string]int{"/v1/nodes?prefix": 1, "/v1/allocations?prefix": 1, "/v1/jobs?prefix": 1}
	same := func(got, want map[string]int) bool {
		if len(got) != len(want) {
			return false
		}
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
	first, err := h.c.refresh(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := ct.take()
	if got["/v1/nodes"] != 1 || got["/v1/allocations"] != 1 || got["/v1/jobs"] != 1 || got["/v1/job/web"] != 1 {
		t.Errorf("first refresh read %v, want every table and the web job", got)
	}
	again, err := h.c.refresh(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ct.take(); !same(got, probes) || again != first {
		t.Errorf("unchanged refresh read %v (same view %v), want only the three index probes", got, again == first)
	}
	var node string
	for _, n := range first.Nodes {
		if n.Datacenter == "dc2" {
			node = n.ID
		}
	}
	if _, err := h.client.Nodes().ToggleEligibility(node, false, nil); err != nil {
		t.Fatal(err)
	}
	third, err := h.c.refresh(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"/v1/nodes?prefix": 1, "/v1/allocations?prefix": 1, "/v1/jobs?prefix": 1, "/v1/nodes": 1}
	if got := ct.take(); !same(got, want) {
		t.Errorf("after an eligibility change read %v, want %v", got, want)
	}
	if n, _ := third.Node(node); n == nil || n.Eligible || len(third.Allocs) != len(first.Allocs) {
		t.Errorf("view after the change: node %+v, %d allocations (was %d)", n, len(third.Allocs), len(first.Allocs))
	}
	var alloc string
	for _, a := range third.Allocs {
		if a.Live && strings.HasPrefix(a.Name, "web.") {
			alloc = a.ID
		}
	}
	if _, err := h.client.Allocations().Stop(&nomadapi.Allocation{ID: alloc}, nil); err != nil {
		t.Fatal(err)
	}
	h.step(10 * time.Second)
	if _, err := h.c.refresh(h.ctx); err != nil {
		t.Fatal(err)
	}
	if got := ct.take(); got["/v1/allocations"] != 1 || got["/v1/nodes"] != 0 {
		t.Errorf("after a stop read %v, want the allocations again and not the nodes", got)
	}
}

func TestMakeBeforeBreakMoveEndsWhenTheOldAllocationStops(t *testing.T) {
	// A 1 MB/s source: the old allocation hands over its 1 GB for about
	// 17 minutes while its replacement already runs in dc2.
	sc := strings.Replace(actScenario, "  bandwidth = 100\n}\n\ndatacenter \"dc2\"", "  bandwidth = 1\n}\n\ndatacenter \"dc2\"", 1)
	sc = strings.Replace(sc, "    count  = 2\n    cpu    = 1000", "    count  = 2\n    replacement = \"make_before_break\"\n    cpu    = 1000", 1)
	// No affinity: with the job's affinity to dc1, Nomad places the
	// replacement back on dc1's node beside its sibling (dc2's node,
	// matching no affinity, averages in a zero), and this test is about
	// when the move ends, not where it lands.
	sc = strings.Replace(sc, "  affinity {\n    attribute = \"node.datacenter\"\n    value     = \"dc1\"\n    weight    = 100\n  }\n", "", 1)
	h := newHarness(t, sc, actPolicies)
	alloc := h.allocs("web")[0].ID
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Allocation: alloc, Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		h.run(h.flatForecasts(30))
		h.step(30 * time.Second)
	}
	if r := h.request(id); r.State != state.RequestRunning {
		t.Fatalf("request %s: %s", r.State, r.Reason)
	}
	for range 10 {
		h.step(time.Minute)
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
	}
	var repl *nomadapi.AllocationListStub
	for _, a := range h.allocs("web") {
		if a.ClientStatus == nomadapi.AllocClientStatusRunning && a.ID != alloc {
			repl = a
		}
	}
	if r := h.request(id); repl == nil || r.State != state.RequestRunning || r.Moves[0].Done {
		t.Fatalf("10 minutes in, with the old allocation still handing over: request %s, move %+v", r.State, r.Moves)
	}
	for range 15 {
		h.step(time.Minute)
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			t.Fatal(err)
		}
	}
	if r := h.request(id); r.State != state.RequestDone || r.Moves[0].Landed != "dc2" {
		t.Fatalf("request %s: %s; moves %+v", r.State, r.Reason, r.Moves)
	}
}

func TestNodeMoveTransfersMaxParallelAtATime(t *testing.T) {
	// Four allocations on dc1's node, a slow source (2 MB/s: a minute or
	// more each, longer when they share it), max_parallel 2.
	sc := strings.Replace(actScenario, "  bandwidth = 100\n}\n\ndatacenter \"dc2\"", "  bandwidth = 2\n}\n\ndatacenter \"dc2\"", 1)
	sc = strings.Replace(sc, "    count  = 2\n    cpu    = 1000\n    memory = 1024", "    count  = 4\n    cpu    = 500\n    memory = 128", 1)
	pols := strings.Replace(actPolicies, "max_parallel = 1", "max_parallel = 2", 1)
	h := newHarness(t, sc, pols)
	id, err := h.c.Submit(h.ctx, h.now(), h.pols, Submission{Node: h.nodeID("a-"), Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	for range 60 {
		h.run(h.flatForecasts(30))
		h.step(15 * time.Second)
		if h.request(id).State.Terminal() {
			break
		}
	}
	if r := h.request(id); r.State != state.RequestDone {
		t.Fatalf("request %s: %s", r.State, r.Reason)
	}
	migs := h.sim.Truth().Migrations
	if len(migs) != 4 {
		t.Fatalf("%d transfers, want 4", len(migs))
	}
	most := 0
	for _, m := range migs {
		at := 0
		for _, o := range migs {
			if !o.Start.After(m.Start) && o.End.After(m.Start) {
				at++
			}
		}
		most = max(most, at)
		if m.TargetLocality != "dc2" {
			t.Errorf("transfer %+v did not land in dc2", m)
		}
	}
	if most != 2 {
		t.Errorf("at most %d transfers at once; want max_parallel 2", most)
	}
}
