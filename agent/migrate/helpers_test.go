package migrate

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/shape"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/foreshape/foreshape/plugins/target"
	_ "github.com/foreshape/foreshape/plugins/target/builtin"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug})
}

// actScenario: dc1 has one node holding two web allocations; dc2's two
// nodes (every node 4000 MHz / 8192 MiB) join once the jobs run (the
// harness adds them), empty.
const actScenario = `
name    = "act"
seed    = 3
start     = "2026-01-05T06:00:00Z"
tick      = "10s"
startup   = "5s"
node_boot = "10s"

datacenter "dc1" {
  bandwidth = 100
}

datacenter "dc2" {
  bandwidth = 100
}

nodes "a" {
  datacenter = "dc1"
  count      = 1
  node_class = "web"
  cpu        = 4000
  memory     = 8192
  iops       = 1000
}

nodes "b" {
  datacenter = "dc2"
  count      = 0
  node_class = "web"
  cpu        = 4000
  memory     = 8192
  iops       = 1000
}

job "web" {
  type        = "service"
  priority    = 60
  datacenters = ["dc1", "dc2"]

  affinity {
    attribute = "node.datacenter"
    value     = "dc1"
    weight    = 100
  }

  group "frontend" {
    count  = 2
    cpu    = 1000
    memory = 1024
  }
}
`

const actPolicies = `
shaping "dc1" {
  locality {
    datacenter = "dc1"
  }
  migrate {
    max_parallel = 1
    targets      = ["dc2"]
  }
}

shaping "dc2" {
  locality {
    datacenter = "dc2"
  }
  reserve {
    enabled    = true
    priority   = 10
    lead_time  = "15m"
    ttl        = "1h"
    max_cpu    = 8000
    max_memory = 16384
  }
  scale "workers" {
    min      = 0
    max      = 10
    cooldown = "10m"
    target "nomad-job" {
      job   = "web"
      group = "frontend"
    }
  }
}
`

// harness is a simulated cluster, a coordinator on an in-process state,
// and the policies.
type harness struct {
	t      *testing.T
	sim    *sim.Cluster
	client *nomadapi.Client
	local  *state.Local
	c      *Coordinator
	pols   []*policies.Policy
	ctx    context.Context
	fake   *fakeTarget
}

func newHarness(t *testing.T, scenario, pols string, tweak ...func(*Config)) *harness {
	t.Helper()
	sc, err := sim.ParseScenario([]byte(scenario), "act.hcl")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := sim.New(sc, sim.Options{Logger: testLogger(t).Named("sim")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cl.Handler())
	t.Cleanup(srv.Close)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ps, diags := policies.Parse("act.hcl", []byte(pols))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	local, err := state.NewLocal(state.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, sim: cl, client: client, local: local, pols: ps, ctx: context.Background(), fake: &fakeTarget{count: 2}}
	cfg := Config{Nomad: client, Apply: local, State: local.FSM, Node: "test", Logger: testLogger(t), SyncScale: true,
		Placeholder: Placeholder{Driver: "raw_exec", Config: map[string]any{"command": "/bin/sleep", "args": []string{"infinity"}}},
		Targets:     func(*policies.Policy, *policies.Scale) (target.Target, error) { return h.fake, nil }}
	for _, f := range tweak {
		f(&cfg)
	}
	h.c, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.step(30 * time.Second) // let the scenario's jobs start on dc1
	if strings.Contains(scenario, `nodes "b"`) {
		if _, err := cl.AddNodes("b", 2); err != nil {
			t.Fatal(err)
		}
		h.step(30 * time.Second)
	}
	return h
}

func (h *harness) now() time.Time { return h.sim.Now() }

func (h *harness) step(d time.Duration) {
	h.t.Helper()
	if err := h.sim.Step(d); err != nil {
		h.t.Fatal(err)
	}
}

// flatForecasts forecasts every policy's CPU and memory flat at v for an
// hour from now.
func (h *harness) flatForecasts(v float64) []shape.Forecast {
	var out []shape.Forecast
	for _, p := range h.pols {
		for _, m := range []string{"cpu", "memory"} {
			f := shape.Forecast{Policy: p.Name, Locality: p.Locality.String(), Metric: m, Quantile: 0.9, Line: 80, HasLine: true}
			for i := range 60 {
				f.Times = append(f.Times, h.now().Add(time.Duration(i)*time.Minute))
				f.Planning = append(f.Planning, v)
			}
			out = append(out, f)
		}
	}
	return out
}

// passUntil runs a pass a minute (a plan on flatForecasts(30), then
// Follow) until the simulated time is past until, calling each, when
// given, after every pass.
func (h *harness) passUntil(until time.Time, each func()) {
	h.t.Helper()
	for !h.now().After(until) {
		h.run(h.flatForecasts(30))
		if err := h.c.Follow(h.ctx, h.now()); err != nil {
			h.t.Fatal(err)
		}
		if each != nil {
			each()
		}
		h.step(time.Minute)
	}
}

// quarterPass runs a pass (a plan on flatForecasts(30)), moves the
// simulated time on 15 seconds and follows.
func (h *harness) quarterPass() {
	h.t.Helper()
	h.run(h.flatForecasts(30))
	h.step(15 * time.Second)
	if err := h.c.Follow(h.ctx, h.now()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) run(fc []shape.Forecast) shape.Plan {
	h.t.Helper()
	plan, err := h.c.RunOnce(h.ctx, h.now(), h.pols, fc)
	if err != nil {
		h.t.Fatal(err)
	}
	return plan
}

// hotForecasts is flatForecasts at 30 with dc2's CPU at 95: a hotspot
// that scales dc2.
func (h *harness) hotForecasts() []shape.Forecast {
	fc := h.flatForecasts(30)
	for i := range fc {
		if fc[i].Locality == "dc2" && fc[i].Metric == "cpu" {
			for k := range fc[i].Planning {
				fc[i].Planning[k] = 95
			}
		}
	}
	return fc
}

// node returns the sim node ID with a name prefix.
func (h *harness) nodeID(prefix string) string {
	h.t.Helper()
	nodes, _, err := h.client.Nodes().List(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, n := range nodes {
		if strings.HasPrefix(n.Name, prefix) {
			return n.ID
		}
	}
	h.t.Fatalf("no node %s*", prefix)
	return ""
}

// allocs lists a job's allocations by desired and client status.
func (h *harness) allocs(job string) []*nomadapi.AllocationListStub {
	h.t.Helper()
	as, _, err := h.client.Jobs().Allocations(job, true, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return as
}

// mutating returns the sim's log of mutating calls, as "METHOD path".
func (h *harness) mutating() []string {
	var out []string
	for _, r := range h.sim.Truth().Requests {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

func (h *harness) request(id string) state.MigrationRequest {
	r, ok := h.local.FSM.Act().Request(id)
	if !ok {
		h.t.Fatalf("no request %s", id)
	}
	return r
}

// fakeTarget is a scale target that records its actions; refuse makes it
// answer as Nomad does during a deployment; wait, when set, runs before it
// takes an action (a target waiting a deployment out).
type fakeTarget struct {
	mu      sync.Mutex
	count   int
	actions []target.Action
	refuse  int
	wait    func()
	// blind makes it a target that cannot tell its count (a webhook).
	blind bool
}

func (f *fakeTarget) Status(context.Context) (target.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return target.Status{Count: f.count, CountKnown: !f.blind, Ready: true}, nil
}

func (f *fakeTarget) Scale(_ context.Context, a target.Action) (target.Result, error) {
	f.mu.Lock()
	f.actions = append(f.actions, a)
	if f.refuse > 0 {
		f.refuse--
		f.mu.Unlock()
		return target.Result{Attempts: 1}, &target.Error{Plugin: "fake", Kind: target.Refused, Reason: "job scaling blocked due to active deployment"}
	}
	wait := f.wait
	f.mu.Unlock()
	res := target.Result{Count: a.Count, Attempts: 1}
	if wait != nil {
		wait()
		res.Attempts, res.Notes = 2, []string{"waited for a deployment to end; retrying"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count = a.Count
	return res, nil
}

func (f *fakeTarget) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.actions)
}

// drainStrategy makes policies move whole nodes by Nomad drains.
func drainStrategy(pols string) string { return withStrategy(pols, "drain") }

// affinityStrategy makes policies steer replacements with a job affinity.
func affinityStrategy(pols string) string { return withStrategy(pols, "affinity") }

func withStrategy(pols, strategy string) string {
	return strings.Replace(pols, "    max_parallel = 1\n", "    max_parallel = 1\n    strategy     = \""+strategy+"\"\n", 1)
}

// eligibility reads a node's scheduling eligibility from Nomad.
func (h *harness) eligibility(node string) string {
	h.t.Helper()
	n, _, err := h.client.Nodes().Info(node, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return n.SchedulingEligibility
}

// wantAffinity fails the test unless job's first group has an affinity to
// datacenter dc.
func (h *harness) wantAffinity(job, dc string) {
	h.t.Helper()
	j, _, err := h.client.Jobs().Info(job, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, af := range j.TaskGroups[0].Affinities {
		if af.LTarget == "${node.datacenter}" && af.RTarget == dc {
			return
		}
	}
	h.t.Errorf("job %s's group has no affinity to %s: %+v", job, dc, j.TaskGroups[0].Affinities)
}

// interpose routes the coordinator's Nomad calls through handle, which
// passes a call on to the simulator with rp (or answers it itself), and
// returns the client that goes to the simulator directly.
func interpose(t *testing.T, c *Config, handle func(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request)) *nomadapi.Client {
	t.Helper()
	direct := c.Nomad
	u, err := url.Parse(c.Nomad.Address())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handle(rp, w, r) }))
	t.Cleanup(srv.Close)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c.Nomad = client
	return direct
}

// answerJSON answers a proxied call with v in place of the answer rec
// recorded, keeping its headers and status.
func answerJSON(t *testing.T, w http.ResponseWriter, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Error(err)
	}
	maps.Copy(w.Header(), rec.Header())
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(rec.Code)
	w.Write(b)
}

// registeredAgain steps the simulated cluster a second at a time, 300 s
// at most, until node, purged, is registered again by its client; name
// is the node's name, for the failure.
func (h *harness) registeredAgain(node, name string) {
	h.t.Helper()
	for n := 0; ; n++ {
		if _, _, err := h.client.Nodes().Info(node, nil); err == nil {
			return
		}
		if n > 300 {
			h.t.Fatalf("%s's client did not register it again", name)
		}
		h.step(time.Second)
	}
}
