package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/config"
	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: testWriter{t}})
}

// startDevAgent runs an agent against the default scenario at speed.
func startDevAgent(t *testing.T, speed float64, opts Options) (*Agent, *testSim, *api.Client) {
	t.Helper()
	return startDevAgentWith(t, speed, opts, nil)
}

// startDevAgentWith is startDevAgent with the dev configuration changed by
// tweak (when not nil) before the agent starts.
func startDevAgentWith(t *testing.T, speed float64, opts Options, tweak func(*config.Config)) (*Agent, *testSim, *api.Client) {
	t.Helper()
	return startDevAgentOn(t, startTestSim(t, speed), opts, tweak)
}

// startDevAgentOn is startDevAgentWith on the running simulator d.
func startDevAgentOn(t *testing.T, d *testSim, opts Options, tweak func(*config.Config)) (*Agent, *testSim, *api.Client) {
	t.Helper()
	log := testLogger(t)
	cfg := config.DevDefault()
	cfg.Name = "agent-test"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = d.URL
	if tweak != nil {
		tweak(cfg)
	}
	if opts.Logger == nil {
		opts.Logger = log
	}
	opts.Clock = d
	if opts.Policies == nil && cfg.Policies.Dir == config.Default().Policies.Dir {
		opts.Policies = devPolicies(t)
	}
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	return a, d, &api.Client{Address: a.HTTPAddr()}
}

// nodeID returns the ID of the named node of the Nomad at url.
func nodeID(t *testing.T, url, name string) string {
	t.Helper()
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Name == name {
			return n.ID
		}
	}
	t.Fatalf("no node named %s", name)
	return ""
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// firstCycle waits for the agent behind c to report a cycle that
// collected something.
func firstCycle(t *testing.T, c *api.Client) {
	t.Helper()
	eventually(t, 30*time.Second, "a first cycle", func() bool {
		st, err := c.Status(context.Background())
		return err == nil && st.LastCycle != nil && st.LastCycle.Collected > 0
	})
}

// runningAlloc waits for an allocation of job that Nomad (nc) reports
// running, and returns its ID.
func runningAlloc(t *testing.T, nc *nomadapi.Client, job string) string {
	t.Helper()
	var alloc string
	eventually(t, 30*time.Second, "a running "+job+" allocation", func() bool {
		as, _, err := nc.Jobs().Allocations(job, false, nil)
		for _, a := range as {
			if err == nil && a.ClientStatus == "running" {
				alloc = a.ID
				return true
			}
		}
		return false
	})
	return alloc
}

func TestDevAgentForecastsEveryPolicy(t *testing.T) {
	t.Parallel()
	_, _, c := startDevAgent(t, 600, Options{})
	ctx := context.Background()
	want := []string{"dc1/*/web:cpu", "dc2:cpu", "dc1/batch:cpu", "dc3:cpu", "dc2:memory"}
	var fcs []api.Forecast
	eventually(t, 60*time.Second, "forecasts for every policy", func() bool {
		var err error
		if fcs, err = c.Forecasts(ctx); err != nil {
			return false
		}
		have := map[string]bool{}
		for _, f := range fcs {
			if f.Ready() {
				have[f.Series] = true
			}
		}
		for _, w := range want {
			if !have[w] {
				return false
			}
		}
		return true
	})
	for _, f := range fcs {
		if !f.Ready() {
			// Without Prometheus, IOPS has no samples: listed, and why.
			if f.Metric == "iops" && (f.Status != api.ForecastNoData || f.Note == "") {
				t.Errorf("%s: status %q note %q, want no_data with a note", f.Series, f.Status, f.Note)
			}
			continue
		}
		if len(f.Times) != 60 || len(f.Bands) != len(f.Quantiles) || f.Model == "" || f.Line == nil {
			t.Errorf("%s: %d steps, %d bands for %d quantiles, model %q, line %v", f.Series, len(f.Times), len(f.Bands), len(f.Quantiles), f.Model, f.Line)
		}
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsLeader || st.LastCycle == nil || st.Series == 0 || st.Policies != 4 {
		t.Errorf("status = %+v", st)
	}
}

func TestUnreachableNodeGoesStaleAndAgentKeepsRunning(t *testing.T) {
	t.Parallel()
	_, d, c := startDevAgent(t, 600, Options{})
	ctx := context.Background()
	firstCycle(t, c)
	if err := d.Cluster.SetFaults(sim.Faults{StatsUnreachable: []string{"dc3-edge-1"}}); err != nil {
		t.Fatal(err)
	}
	node := "node/" + nodeID(t, d.URL, "dc3-edge-1")
	var st api.Status
	eventually(t, 30*time.Second, node+" series marked stale", func() bool {
		var err error
		st, err = c.Status(ctx)
		if err != nil {
			return false
		}
		for _, s := range st.Stale {
			if s.Series == node+":cpu" && strings.Contains(s.Reason, "dc3-edge-1") {
				return true
			}
		}
		return false
	})
	// The series listing names the node, and says how much it holds.
	series, err := c.Series(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range series {
		if s.Series == node+":cpu" {
			found = true
			if s.Node != "dc3-edge-1" || s.Points == 0 || s.First.IsZero() || s.First.After(s.Last) || !s.Stale {
				t.Errorf("series %+v: want the node's name, its points and first time, and the stale mark", s)
			}
		}
	}
	if !found {
		t.Errorf("%s:cpu not listed", node)
	}
	first := st.LastCycle.DataTime
	eventually(t, 30*time.Second, "cycles to go on", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.LastCycle.DataTime.After(first.Add(5*time.Minute))
	})
	// The locality is still forecast from its other nodes.
	eventually(t, 30*time.Second, "a dc3 forecast without the stale node", func() bool {
		fcs, err := c.Forecast(ctx, "dc3", "cpu")
		return err == nil && len(fcs) == 1 && fcs[0].Ready()
	})
	// The node comes back: the mark clears with its first fresh sample.
	if err := d.Cluster.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the stale mark to clear", func() bool {
		st, err := c.Status(ctx)
		if err != nil {
			return false
		}
		for _, s := range st.Stale {
			if strings.HasPrefix(s.Series, node+":") {
				return false
			}
		}
		return true
	})
}

func TestReloadKeepsOldPoliciesWhenNewAreInvalid(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(devPoliciesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dev.hcl"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	cfg := config.DevDefault()
	cfg.Name = "reload-test"
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = "http://127.0.0.1:1"
	cfg.Policies.Dir = dir
	a, err := New(cfg, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if n := len(a.Policies(ctx)); n != 4 {
		t.Fatalf("policies = %d, want 4", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.hcl"), []byte(`shaping "x" { forecast { quantile = 2 } }`), 0o600); err != nil {
		t.Fatal(err)
	}
	err = a.Reload(nil)
	if err == nil || !strings.Contains(err.Error(), "broken.hcl") {
		t.Errorf("Reload error = %v, want one naming broken.hcl", err)
	}
	if n := len(a.Policies(ctx)); n != 4 {
		t.Errorf("policies after a failed reload = %d, want the old 4", n)
	}
	if err := os.Remove(filepath.Join(dir, "broken.hcl")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "more.hcl"), []byte(`shaping "extra" {
  locality {
    datacenter = "dc9"
  }
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(nil); err != nil {
		t.Fatal(err)
	}
	if n := len(a.Policies(ctx)); n != 5 {
		t.Errorf("policies after a good reload = %d, want 5", n)
	}
}

func TestServerDisabledIsRefused(t *testing.T) {
	cfg := config.DevDefault()
	cfg.Server.Enabled = false
	_, err := New(cfg, Options{Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "server.enabled") {
		t.Errorf("err = %v, want one naming server.enabled", err)
	}
}

func TestPolicyQueriesNeedPrometheus(t *testing.T) {
	pols, diags := policies.Parse("q.hcl", []byte(`shaping "queue" {
  locality {
    datacenter = "dc1"
  }
  forecast {
    queries = {
      queue_depth = "sum(queue_depth{ {{.Matchers}} })"
    }
  }
}
`))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	cfg := config.DevDefault()
	cfg.HTTP.Address = "127.0.0.1:0"
	_, err := New(cfg, Options{Logger: testLogger(t), Policies: pols})
	if err == nil || !strings.Contains(err.Error(), "prometheus.address") || !strings.Contains(err.Error(), "queue") {
		t.Errorf("err = %v, want one naming the policy and prometheus.address", err)
	}
}

// webScenario is testdata/web.hcl: two datacenters of two web nodes and
// one web job of two allocations, for tests that move a web allocation or
// run a leader by hand and whose assertions do not depend on the default
// scenario's size. Its cycles are cheap: with the race detector,
// TestRevokedNomadToken (cycles back to back) took 3.0-3.4 CPU seconds on
// it, 10-12 on the default scenario and the dev policies.
func webScenario(t *testing.T) *sim.Scenario {
	t.Helper()
	sc, err := sim.LoadScenario(os.DirFS("testdata"), "web.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// webPolicies are testdata/web-policies.hcl: one policy on webScenario's
// dc1, which scales the web job.
func webPolicies(t *testing.T) []*policies.Policy {
	t.Helper()
	const file = "testdata/web-policies.hcl"
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pols, diags := policies.Parse(file, src)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return pols
}

// leaderByHand is a dev agent of that name on the simulator d (of
// webScenario), with webPolicies, whose Raft leads but whose leader loop
// does not run: the test runs its terms by hand (a.leaderLoop). It is
// closed when the test ends.
func leaderByHand(t *testing.T, d *testSim, name string) *Agent {
	t.Helper()
	cfg := config.DevDefault()
	cfg.Name = name
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Nomad.Address = d.URL
	a, err := New(cfg, Options{Logger: testLogger(t), Clock: d, Policies: webPolicies(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	eventually(t, 10*time.Second, "leadership", func() bool { _, ok := a.node.LeaderContext(); return ok })
	return a
}

// TestLeadershipEndWithdrawsForecasts runs one leadership term by hand and
// ends it: what the term published (forecasts, hotspots, gauges) must not
// outlive it, or a follower would serve them as current.
func TestLeadershipEndWithdrawsForecasts(t *testing.T) {
	t.Parallel()
	d := startScenario(t, webScenario(t), 600)
	a := leaderByHand(t, d, "term-test")
	ctx := context.Background()
	metrics := func() string {
		rec := httptest.NewRecorder()
		a.api.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/metrics", nil))
		return rec.Body.String()
	}
	termCtx, endTerm := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.leaderLoop(termCtx)
	}()
	eventually(t, 30*time.Second, "forecasts and their gauges", func() bool {
		return len(a.Forecasts(ctx)) > 0 && strings.Contains(metrics(), "foreshape_forecast{")
	})
	endTerm()
	<-done
	if fs := a.Forecasts(ctx); len(fs) != 0 {
		t.Errorf("%d forecasts still served after leadership ended", len(fs))
	}
	if hs := a.Hotspots(ctx); len(hs) != 0 {
		t.Errorf("%d hotspots still served after leadership ended", len(hs))
	}
	m := metrics()
	if strings.Contains(m, "foreshape_forecast{") || strings.Contains(m, "foreshape_hotspot_probability{") {
		t.Error("forecast gauges still exported after leadership ended")
	}
	if !strings.Contains(m, "foreshape_forecasts 0") {
		t.Error("foreshape_forecasts is not 0 after leadership ended")
	}
	if st := a.Status(ctx); st.LastCycle != nil {
		t.Errorf("status still reports the last term's cycle: %+v", st.LastCycle)
	}
}

// TestLocalityWithoutNodesIsWithdrawn: every node of dc3 goes down, so its
// series get no sample and no source reports them stale; within a few
// steps they are marked stale and dc3's forecast leaves the API and the
// gauges, until its nodes come back.
func TestLocalityWithoutNodesIsWithdrawn(t *testing.T) {
	t.Parallel()
	a, d, c := startDevAgent(t, 600, Options{})
	ctx := context.Background()
	metrics := func() string {
		rec := httptest.NewRecorder()
		a.api.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/metrics", nil))
		return rec.Body.String()
	}
	dc3 := func() api.Forecast {
		fcs, err := c.Forecast(ctx, "dc3", "cpu")
		if err != nil || len(fcs) != 1 {
			return api.Forecast{}
		}
		return fcs[0]
	}
	eventually(t, 60*time.Second, "a dc3 forecast and its gauges", func() bool {
		return dc3().Ready() && strings.Contains(metrics(), `locality="dc3"`)
	})
	var down []string
	for i := 1; i <= 6; i++ {
		down = append(down, fmt.Sprintf("dc3-edge-%d", i))
	}
	if err := d.Cluster.SetFaults(sim.Faults{NodesDown: down}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "dc3's forecast withdrawn", func() bool {
		f := dc3()
		return f.Status == api.ForecastStale && !strings.Contains(metrics(), `locality="dc3"`)
	})
	if f := dc3(); !strings.Contains(f.Note, "stale") || len(f.Bands) != 0 {
		t.Errorf("dc3 cpu = %+v, want stale with a note and no bands", f)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Which reason marks it depends on when the Nomad source's node list
	// (a blocking-query watch) sees the nodes go down: before, the locality
	// has no ready node and its series age out; after a cycle that still
	// lists them as ready, their stats fail and the source says so at once.
	marked := false
	for _, s := range st.Stale {
		marked = marked || (s.Series == "dc3:cpu" && (strings.Contains(s.Reason, "no sample for more than 3 steps") ||
			strings.Contains(s.Reason, "none of the locality's 6 nodes answered")))
	}
	if !marked {
		t.Errorf("dc3:cpu not marked stale in status: %+v", st.Stale)
	}
	// A task group's series, which stop when its allocations end, are
	// not a source's trouble: /v1/series marks them, status does not
	// list them.
	for _, s := range st.Stale {
		if strings.HasPrefix(s.Series, "group/") {
			t.Errorf("status lists a task group's series as stale: %+v", s)
		}
	}
	if series, err := c.Series(ctx); err == nil {
		n := 0
		for _, s := range series {
			if s.Stale && strings.HasPrefix(s.Series, "group/") {
				n++
			}
		}
		t.Logf("%d task group series stale in /v1/series", n)
	}
	hs, _ := c.Hotspots(ctx)
	for _, h := range hs {
		if h.Locality == "dc3" {
			t.Errorf("a hotspot of the withdrawn dc3: %+v", h)
		}
	}
	if err := d.Cluster.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "dc3 forecast again", func() bool { return dc3().Ready() })
}

// TestWarmingUpIsReported: before a locality has twelve points, the status
// and the forecasts say so, and when the first forecast is due.
func TestWarmingUpIsReported(t *testing.T) {
	t.Parallel()
	_, _, c := startDevAgent(t, 60, Options{})
	ctx := context.Background()
	var note string
	eventually(t, 30*time.Second, "a warming-up note for dc2 cpu", func() bool {
		fcs, err := c.Forecast(ctx, "dc2", "cpu")
		if err != nil || len(fcs) != 1 || fcs[0].Status != api.ForecastWarmingUp {
			return false
		}
		note = fcs[0].Note
		return fcs[0].Warmup != nil && fcs[0].Warmup.Points > 0
	})
	if !regexp.MustCompile(`^warming up: \d+ of 12 points, first forecast at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(note) {
		t.Errorf("note = %q", note)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range st.Pending {
		found = found || (p.Series == "dc2:cpu" && strings.HasPrefix(p.Note, "warming up: "))
	}
	if !found {
		t.Errorf("status does not list dc2:cpu warming up: %+v", st.Pending)
	}
}

// TestUnknownLocalityIsExplained: a policy naming a locality no Nomad node
// is in (a datacenter spelt wrong) does not wait for samples in silence:
// its series say why there are none, as do IOPS series without Prometheus.
func TestUnknownLocalityIsExplained(t *testing.T) {
	t.Parallel()
	typo, diags := policies.Parse("typo.hcl", []byte("shaping \"typo\" {\n  locality {\n    datacenter = \"dc9\"\n  }\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	_, _, c := startDevAgent(t, 600, Options{Policies: append(devPolicies(t), typo...)})
	ctx := context.Background()
	notes := map[string]string{}
	eventually(t, 60*time.Second, "a first cycle with dc2 cpu forecast", func() bool {
		st, err := c.Status(ctx)
		if err != nil || st.LastCycle == nil || st.LastCycle.Forecasts == 0 {
			return false
		}
		for _, p := range st.Pending {
			notes[p.Series] = p.Note
		}
		return true
	})
	if want := "no samples yet: no ready Nomad node is in dc9 (the ready nodes are in dc1, dc2, dc3)"; notes["dc9:cpu"] != want {
		t.Errorf("dc9:cpu pending %q, want %q", notes["dc9:cpu"], want)
	}
	if n := notes["dc2:iops"]; !strings.Contains(n, "prometheus.address is not set") {
		t.Errorf("dc2:iops pending %q, want it to say IOPS need Prometheus", n)
	}
}

// TestHotspotLoggedWhenItChanges: a hotspot predicted cycle after cycle
// is logged at info level once, when it appears, and once more when it is
// no longer predicted; the cycles between log it at debug level.
func TestHotspotLoggedWhenItChanges(t *testing.T) {
	var buf bytes.Buffer
	a := &Agent{log: hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &buf})}
	tm := &term{}
	dc2 := predict.Hotspot{Policy: "web", Locality: policies.Locality{Datacenter: "dc2"}, Metric: "cpu", Line: 75, Peak: 90}
	dc3 := predict.Hotspot{Policy: "edge", Locality: policies.Locality{Datacenter: "dc3"}, Metric: "memory", Line: 80, Peak: 85}
	for _, hs := range [][]predict.Hotspot{{dc2}, {dc2}, {dc2, dc3}, {dc2, dc3}, {dc3}, {}} {
		a.logHotspots(tm, hs)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		_, msg, _ := strings.Cut(l, "[INFO]  ")
		msg, _, _ = strings.Cut(msg, " at=")
		got = append(got, msg)
	}
	want := []string{
		"hotspot predicted: policy=web locality=dc2 metric=cpu",
		"hotspot predicted: policy=edge locality=dc3 metric=memory",
		"hotspot no longer predicted: policy=web locality=dc2 metric=cpu",
		"hotspot no longer predicted: policy=edge locality=dc3 metric=memory",
	}
	if !slices.Equal(got, want) {
		t.Errorf("info lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// syncBuffer is what the agent's goroutines log to, with the counts the
// tests read.
type syncBuffer struct{ syncbuf.Buffer }

func (b *syncBuffer) count(s string) int {
	return strings.Count(b.String(), s)
}

var loggedError = regexp.MustCompile(`error=("(?:[^"\\]|\\.)*"|\S+)`)

// errorsOf returns the error= value of every line logged with msg, in
// order.
func (b *syncBuffer) errorsOf(msg string) []string {
	var errs []string
	for _, l := range strings.Split(b.String(), "\n") {
		if _, rest, ok := strings.Cut(l, msg); ok {
			m := loggedError.FindStringSubmatch(rest)
			if m == nil {
				m = []string{"", ""}
			}
			errs = append(errs, m[1])
		}
	}
	return errs
}

// TestNomadFailuresLoggedOnce: while Nomad answers every call with a 500,
// cycle after cycle, the collection's and the act pass's failures are
// logged once each (the same failure again only after ten minutes), not a
// line a cycle; when Nomad answers again, that is said once. A different
// error is said at once, by design: the faults can begin in the middle of
// a pass, whose failure then names a later call than the next pass's
// (allocations, then nodes), so each is logged at most twice, never with
// the same error twice.
func TestNomadFailuresLoggedOnce(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info,
		Output: io.MultiWriter(&logs, testWriter{t})})
	// The io scenario's six nodes and three plain policies, not the dev
	// agent's: the lines are the collection's and the act pass's, which
	// any cluster gives, and the cycles run back to back until 30 have
	// failed. With -race a cycle on the io scenario takes 20-60 ms, one on
	// the default scenario 150-600 ms (TestPrometheusDownAtStartAndABadQuery).
	sc, err := sim.ParseScenario([]byte(ioScenarioSource()), "io.hcl")
	if err != nil {
		t.Fatal(err)
	}
	d := startScenario(t, sc, 600)
	_, _, c := startDevAgentOn(t, d, Options{Logger: log, Policies: ioPolicies(t), CycleInterval: 20 * time.Millisecond}, nil)
	ctx := context.Background()
	firstCycle(t, c)
	if err := d.Cluster.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	// Count the failing cycles the status shows, until there are 30.
	failed := map[time.Time]bool{}
	eventually(t, 60*time.Second, "30 failing cycles", func() bool {
		for range 20 {
			st, err := c.Status(ctx)
			if err == nil && st.LastCycle != nil && strings.Contains(st.LastCycle.Error, "500") {
				failed[st.LastCycle.Started] = true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return len(failed) >= 30
	})
	for _, line := range []string{
		"source failed; its series get no samples while it fails",
		"collection failed; forecasting from what the store has",
		"act: plan and act pass failed",
	} {
		errs := logs.errorsOf(line)
		distinct := map[string]bool{}
		for _, e := range errs {
			distinct[e] = true
		}
		if len(errs) == 0 || len(errs) > 2 || len(distinct) != len(errs) {
			t.Errorf("%q logged %d times over %d failing cycles, errors %q...; want once (twice when the faults began mid-pass, with another error)", line, len(errs), len(failed), errs[:min(len(errs), 3)])
		}
	}
	if err := d.Cluster.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the recovery logged", func() bool {
		return logs.count("source answers again: source=nomad failed_for=") == 1 &&
			logs.count("collection works again") == 1 && logs.count("act: plan and act pass works again") == 1
	})
}

// TestDevRaftAddressShown: a dev agent's Raft transport is in-process, its
// address a random ID nobody can dial; status and the Raft configuration
// say "in-memory (dev)" instead.
func TestDevRaftAddressShown(t *testing.T) {
	t.Parallel()
	_, _, c := startDevAgent(t, 600, Options{})
	ctx := context.Background()
	var st api.Status
	eventually(t, 30*time.Second, "a leader", func() bool {
		var err error
		st, err = c.Status(ctx)
		return err == nil && st.IsLeader
	})
	if st.Leader != InMemoryRaftAddress || len(st.Peers) != 1 || st.Peers[0].Address != InMemoryRaftAddress {
		t.Errorf("status leader %q, peers %+v: want the Raft address shown as %q", st.Leader, st.Peers, InMemoryRaftAddress)
	}
	rc, err := c.RaftConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Servers) != 1 || rc.Servers[0].Address != InMemoryRaftAddress {
		t.Errorf("raft configuration %+v: want the Raft address shown as %q", rc.Servers, InMemoryRaftAddress)
	}
}
