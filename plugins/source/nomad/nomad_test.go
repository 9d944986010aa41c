package nomad

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/plugins/source/sourcetest"
	"github.com/foreshape/foreshape/policies"
	"github.com/foreshape/foreshape/sim"
)

// newSim starts the default scenario a few minutes in, served over HTTP.
func newSim(t *testing.T) (*sim.Cluster, *nomadapi.Client) {
	t.Helper()
	return newSimOf(t, sim.DefaultScenario())
}

// newSimOf starts scenario sc a few minutes in, served over HTTP, with a
// client of it without a token.
func newSimOf(tb testing.TB, sc *sim.Scenario) (*sim.Cluster, *nomadapi.Client) {
	tb.Helper()
	c, url := serveSim(tb, sc)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: url})
	if err != nil {
		tb.Fatal(err)
	}
	return c, client
}

// serveSim starts scenario sc a few minutes in and serves it over HTTP at
// the URL it returns.
func serveSim(tb testing.TB, sc *sim.Scenario) (*sim.Cluster, string) {
	tb.Helper()
	c, err := sim.New(sc, sim.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Step(5 * time.Minute); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	tb.Cleanup(srv.Close)
	return c, srv.URL
}

// nodeIDs maps every node's name to its ID.
func nodeIDs(t *testing.T, client *nomadapi.Client) map[string]string {
	t.Helper()
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range nodes {
		out[n.Name] = n.ID
	}
	return out
}

var (
	dc1Web = policies.Locality{Datacenter: "dc1", NodeClass: "web"}
	dc2    = policies.Locality{Datacenter: "dc2"}
)

func TestCollectAggregatesNodes(t *testing.T) {
	c, client := newSim(t)
	s, err := New(Config{Client: client, NodeSeries: true, AllocStats: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Collect(context.Background(), source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc1Web, dc2}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, smp := range res.Samples {
		got[smp.Series] = smp.Value
		if !smp.Time.Equal(c.Now()) {
			t.Errorf("%s stamped %v, want the request's Now %v", smp.Series, smp.Time, c.Now())
		}
	}
	if len(res.Stale) != 0 {
		t.Errorf("stale = %+v, want none", res.Stale)
	}
	// dc1 web nodes: 8 nodes of 8000 MHz; the percent is the absolute over
	// the sum of their allocatable capacity.
	mhz, pct := got["dc1/*/web:cpu_mhz"], got["dc1/*/web:cpu"]
	if mhz <= 0 || pct <= 0 || pct >= 100 {
		t.Fatalf("dc1/*/web cpu = %v MHz, %v %%", mhz, pct)
	}
	// Node series are keyed by node ID, never by name (names need not be
	// unique, IDs are); NodeNames shows the names.
	var nodesMHz float64
	ids := nodeIDs(t, client)
	names := s.NodeNames()
	for name, id := range ids {
		if names[id] != name {
			t.Errorf("NodeNames()[%s] = %q, want %q", id, names[id], name)
		}
		if _, ok := got["node/"+name+":cpu"]; ok {
			t.Errorf("a node series is keyed by the name %s", name)
		}
		v, ok := got["node/"+id+":cpu_mhz"]
		if !ok {
			t.Errorf("no series node/%s:cpu_mhz for node %s", id, name)
		}
		if strings.HasPrefix(name, "dc1-rack-") {
			nodesMHz += v
		}
	}
	if d := nodesMHz - mhz; d > 1e-6 || d < -1e-6 {
		t.Errorf("locality cpu_mhz %v is not the sum of its nodes' %v", mhz, nodesMHz)
	}
	if _, ok := got["dc2:memory"]; !ok {
		t.Error("dc2:memory missing")
	}
	if _, ok := got["group/default/web/frontend:cpu_mhz"]; !ok {
		t.Errorf("per task group series missing; have %d series", len(got))
	}
	if n, _, err := client.Jobs().Allocations("web", false, nil); err != nil {
		t.Fatal(err)
	} else if want := float64(countRunning(n, "frontend")); got["group/default/web/frontend:allocs"] != want || want == 0 {
		t.Errorf("group/default/web/frontend:allocs = %v; want its %v running allocations", got["group/default/web/frontend:allocs"], want)
	}
}

func TestUnreachableNodeIsStaleAndExcluded(t *testing.T) {
	c, client := newSim(t)
	s, err := New(Config{Client: client, NodeSeries: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc1Web}}
	before, err := s.Collect(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetFaults(sim.Faults{StatsUnreachable: []string{"dc1-rack-a-1"}}); err != nil {
		t.Fatal(err)
	}
	after, err := s.Collect(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	stale := map[string]string{}
	for _, st := range after.Stale {
		stale[st.Series] = st.Reason
	}
	node := "node/" + nodeIDs(t, client)["dc1-rack-a-1"]
	if r := stale[node+":cpu"]; !strings.Contains(r, "dc1-rack-a-1") {
		t.Errorf("node series not stale with a reason naming the node: %+v", after.Stale)
	}
	val := func(r source.Result, series string) (float64, bool) {
		for _, smp := range r.Samples {
			if smp.Series == series {
				return smp.Value, true
			}
		}
		return 0, false
	}
	if _, ok := val(after, node+":cpu"); ok {
		t.Error("a stale node still has samples")
	}
	// The locality's absolute use would be a partial sum: stale, not
	// published. Its percent is the answering nodes' use over their own
	// capacity.
	for _, m := range []string{"cpu_mhz", "memory_mb"} {
		series := "dc1/*/web:" + m
		if v, ok := val(after, series); ok {
			t.Errorf("%s = %v published from part of the locality", series, v)
		}
		if r := stale[series]; !strings.Contains(r, "7 of the locality's 8 nodes answered") {
			t.Errorf("%s stale reason %q, want one giving the coverage", series, r)
		}
	}
	if _, ok := val(before, "dc1/*/web:cpu_mhz"); !ok {
		t.Error("no dc1/*/web:cpu_mhz with every node answering")
	}
	pct, ok := val(after, "dc1/*/web:cpu")
	if !ok || pct <= 0 || pct >= 100 {
		t.Errorf("dc1/*/web:cpu = %v, %v: the percent of the answering nodes is still published", pct, ok)
	}
}

func TestEveryNodeUnreachableFails(t *testing.T) {
	c, client := newSim(t)
	var all []string
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		all = append(all, n.Name)
	}
	if err := c.SetFaults(sim.Faults{StatsUnreachable: all}); err != nil {
		t.Fatal(err)
	}
	s, _ := New(Config{Client: client, NodeSeries: true}, nil)
	res, err := s.Collect(context.Background(), source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc2}})
	if err == nil {
		t.Error("no error when no node answered")
	}
	// The series that could not be refreshed are still named, with why.
	stale := map[string]string{}
	for _, st := range res.Stale {
		stale[st.Series] = st.Reason
	}
	if r := stale["dc2:cpu"]; !strings.Contains(r, "none of the locality's") {
		t.Errorf("dc2:cpu stale reason %q, want one saying no node answered", r)
	}
	if len(stale) != 4*len(nodes)+4 || len(res.Samples) != 0 {
		t.Errorf("%d stale series and %d samples, want every node's and dc2's four series stale and no sample", len(stale), len(res.Samples))
	}
}

// TestCollectWithoutWatchSeesNewNodes: a source no Watch keeps current
// (the proof's, which collects in virtual time) lists the nodes at each
// collection, so a node added since the last one (a scale-out) is read,
// in its datacenter's sums and its own series.
func TestCollectWithoutWatchSeesNewNodes(t *testing.T) {
	c, client := newSim(t)
	s, err := New(Config{Client: client, NodeSeries: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	collect := func() (nodes int, capMHz float64) {
		t.Helper()
		res, err := s.Collect(context.Background(), source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc2}})
		if err != nil {
			t.Fatal(err)
		}
		var mhz, pct float64
		for _, smp := range res.Samples {
			switch {
			case strings.HasPrefix(smp.Series, source.NodeScope) && strings.HasSuffix(smp.Series, ":cpu_mhz"):
				nodes++
			case smp.Series == "dc2:cpu_mhz":
				mhz = smp.Value
			case smp.Series == "dc2:cpu":
				pct = smp.Value
			}
		}
		return nodes, 100 * mhz / pct
	}
	before, capBefore := collect()
	if _, err := c.AddNodes("dc2-web", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(5 * time.Minute); err != nil { // the node boots
		t.Fatal(err)
	}
	after, capAfter := collect()
	if after != before+1 || capAfter <= capBefore {
		t.Errorf("after a node joined dc2: %d node series (before %d), dc2 capacity %.0f MHz (before %.0f)", after, before, capAfter, capBefore)
	}
}

// TestCollectWithoutWatchListsNodesOnChange: a source no Watch keeps
// current lists the nodes again only when the node table's index moved
// (here when a node joins); between, it asks for the index alone and
// collects from the list it has.
func TestCollectWithoutWatchListsNodesOnChange(t *testing.T) {
	c, err := sim.New(sim.DefaultScenario(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	lists := 0 // node lists that are no index probe
	h := c.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/nodes" && r.URL.Query().Get("prefix") == "" {
			mu.Lock()
			lists++
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: client, NodeSeries: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	collect := func(want int) (nodes int) {
		t.Helper()
		if err := c.Step(time.Minute); err != nil {
			t.Fatal(err)
		}
		res, err := s.Collect(context.Background(), source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc2}})
		if err != nil {
			t.Fatal(err)
		}
		for _, smp := range res.Samples {
			if strings.HasPrefix(smp.Series, source.NodeScope) && strings.HasSuffix(smp.Series, ":cpu_mhz") {
				nodes++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if lists != want {
			t.Errorf("%d node lists, want %d", lists, want)
		}
		return nodes
	}
	before := collect(1)
	collect(1)
	collect(1)
	if _, err := c.AddNodes("dc2-web", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(5 * time.Minute); err != nil { // the node boots
		t.Fatal(err)
	}
	if after := collect(2); after != before+1 {
		t.Errorf("%d node series after a node joined, %d before", after, before)
	}
	collect(2)
}

// BenchmarkCollectLargeWithoutWatch measures one collection of every
// datacenter of the 1,000-node large scenario by a source no Watch keeps
// current, as the proof collects, the cluster unchanged between.
func BenchmarkCollectLargeWithoutWatch(b *testing.B) {
	sc, err := sim.LoadScenario(sim.Scenarios(), "large.hcl")
	if err != nil {
		b.Fatal(err)
	}
	c, client := newSimOf(b, sc)
	s, err := New(Config{Client: client, Concurrency: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	req := source.Request{Now: c.Now(), Step: time.Minute}
	seen := map[string]bool{}
	for _, g := range sc.NodeGroups {
		if !seen[g.Datacenter] {
			seen[g.Datacenter] = true
			req.Localities = append(req.Localities, policies.Locality{Datacenter: g.Datacenter})
		}
	}
	for b.Loop() {
		if _, err := s.Collect(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWatchSeesNewNodeList(t *testing.T) {
	c, client := newSim(t)
	s, _ := New(Config{Client: client}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { s.Watch(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.nodes)
		s.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watch never listed the nodes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.SetFaults(sim.Faults{NodesDown: []string{"dc3-edge-1"}}); err != nil {
		t.Fatal(err)
	}
	for {
		s.mu.Lock()
		down := false
		for _, n := range s.nodes {
			if n.Name == "dc3-edge-1" && n.Status == "down" {
				down = true
			}
		}
		s.mu.Unlock()
		if down {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the blocking query did not return the node going down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestConformance(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) sourcetest.Fixture {
		c, client := newSim(t)
		s, err := New(Config{Client: client}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sourcetest.Fixture{
			Source:     s,
			Request:    source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc1Web, dc2}},
			WantSeries: []string{"dc1/*/web:cpu", "dc1/*/web:memory", "dc2:cpu", "dc2:memory_mb"},
			Advance: func(d time.Duration) {
				if err := c.Step(d); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

// countRunning counts a task group's running allocations.
func countRunning(allocs []*nomadapi.AllocationListStub, group string) int {
	n := 0
	for _, a := range allocs {
		if a.TaskGroup == group && a.ClientStatus == "running" {
			n++
		}
	}
	return n
}

// lockedBuffer is what the watches' goroutines log to, with the counts
// the tests read.
type lockedBuffer struct{ syncbuf.Buffer }

func (b *lockedBuffer) count(s string) int {
	return strings.Count(b.String(), s)
}

// TestWatchFailureLoggedOnce: a watch whose every try fails (backing off
// 1 s, 2 s, …) logs the failure once, not once a try, and says once when
// Nomad answers again.
func TestWatchFailureLoggedOnce(t *testing.T) {
	c, client := newSim(t)
	if err := c.SetFaults(sim.Faults{ErrorRate: 1, PathPrefix: "/v1/nodes"}); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	s, _ := New(Config{Client: client}, hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { s.Watch(ctx); close(done) }()
	// Tries at 0, 1 and 3 s.
	time.Sleep(3500 * time.Millisecond)
	if n := logs.count("watch failed; retrying"); n != 1 {
		t.Errorf("3 failed tries logged %d lines, want 1:\n%s", n, logs.String())
	}
	if err := c.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for logs.count("watch answers again: what=nodes failed_for=") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery line:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestWatchEndsAHeldQuery: a blocking query that Nomad takes and never
// answers (a connection gone silent) ends a little after Nomad's wait, is
// logged and asked again, and the watch then sees what changed meanwhile;
// so for the allocations' watch. Before each request had a bound, the
// held queries hung for the watch's life.
func TestWatchEndsAHeldQuery(t *testing.T) {
	c, client := newSim(t)
	var logs lockedBuffer
	s, _ := New(Config{Client: client, AllocStats: true}, hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs}))
	s.wait, s.margin = 100*time.Millisecond, 200*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { s.Watch(ctx); close(done) }()
	// until fails the test when cond is still false after a bound far
	// longer than the watches need (a held query was held 10 minutes).
	until := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s:\n%s", what, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	until("the watches never listed", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.nodes != nil && s.allocs != nil
	})
	if err := c.SetFaults(sim.Faults{Holds: []sim.Hold{{Path: "/v1/nodes", Count: 1}, {Path: "/v1/allocations", Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	until("no query was held", func() bool {
		f := c.Faults()
		return f.Holds[0].Caught == 1 && f.Holds[1].Caught == 1
	})
	ids, err := c.AddNodes("dc2-web", 1) // while the watch waits for an answer
	if err != nil {
		t.Fatal(err)
	}
	until("the held queries did not end with a failure", func() bool {
		return logs.count("watch failed; retrying: what=nodes") == 1 && logs.count("watch failed; retrying: what=allocations") == 1
	})
	if n := logs.count("no answer from Nomad in time: none within 306.25ms (the blocking query's wait of 100ms"); n != 2 {
		t.Errorf("%d failures say how long the query had, want 2:\n%s", n, logs.String())
	}
	until("the watches did not answer again", func() bool {
		return logs.count("watch answers again: what=nodes") == 1 && logs.count("watch answers again: what=allocations") == 1
	})
	until("the node added while the query was held never showed", func() bool {
		_, ok := s.NodeNames()[ids[0]]
		return ok
	})
	cancel()
	<-done
}

// TestUnmeasuredAllocationsAreStale: a Nomad client without telemetry's
// publish_allocation_metrics (its default outside -dev) never measures its
// allocations and answers their stats with no task, zero usage and a zero
// Timestamp (measured on a Nomad 2.0.6-dev client). Their task groups'
// series are stale, saying why, not samples of zero use; the nodes' and
// localities' series, from host stats, are unaffected; and a client
// agent's report says they are unmeasured, so that the leader neither
// reads zeros nor asks Nomad again.
func TestUnmeasuredAllocationsAreStale(t *testing.T) {
	sc := sim.DefaultScenario()
	for i := range sc.NodeGroups {
		sc.NodeGroups[i].AllocMetricsOff = true
	}
	c, url := serveSim(t, sc)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: client, AllocStats: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Collect(context.Background(), source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc1Web, dc2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, smp := range res.Samples {
		if strings.HasPrefix(smp.Series, "group/") {
			t.Errorf("%s = %v from stats no client measured", smp.Series, smp.Value)
		}
	}
	stale := map[string]string{}
	for _, st := range res.Stale {
		stale[st.Series] = st.Reason
	}
	for _, m := range []string{source.CPUMHz, source.MemoryMB, source.Allocs} {
		series := "group/default/web/frontend:" + m
		if r := stale[series]; !strings.Contains(r, "publish_allocation_metrics") {
			t.Errorf("%s stale reason %q, want one naming publish_allocation_metrics", series, r)
		}
	}
	if got := len(res.Samples); got != 8 {
		t.Errorf("%d samples, want the two localities' four each: %+v", got, res.Samples)
	}

	ids := nodeIDs(t, client)
	reports := staticReports{}
	for name, id := range ids {
		r, err := ReadReport(context.Background(), client, id, true)
		if err != nil {
			t.Fatal(err)
		}
		for a, u := range r.Allocs {
			if !u.Unmeasured || u.CPUMHz != 0 || u.MemoryMB != 0 {
				t.Errorf("report of %s: allocation %s %+v, want it unmeasured", name, a, u)
			}
		}
		if name == "dc1-rack-a-1" && (len(r.Allocs) == 0 || r.CPUMHz <= 0) {
			t.Errorf("report of %s: %v MHz, allocations %+v; want its host's use and its allocations unmeasured", name, r.CPUMHz, r.Allocs)
		}
		reports[id] = r
	}
	// From the reports: stale as before, without asking Nomad.
	ct := &countingTransport{paths: map[string]int{}}
	counted, err := nomadapi.NewClient(&nomadapi.Config{Address: url, HttpClient: &http.Client{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	s, err = New(Config{Client: counted, AllocStats: true, Reports: reports}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err = s.Collect(context.Background(), source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc1Web, dc2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range res.Stale {
		stale[st.Series] = st.Reason
	}
	if r := stale["group/default/web/frontend:cpu_mhz"]; !strings.Contains(r, "client agent's report") || !strings.Contains(r, "publish_allocation_metrics") {
		t.Errorf("from reports: group/default/web/frontend:cpu_mhz stale reason %q, want the report's", r)
	}
	if n := ct.count("/v1/client/"); n != 0 {
		t.Errorf("%d stats requests with every node reported, want none", n)
	}
}

// TestAllocUsage: an allocation's stats are its usage only when its client
// measured every running task; a task not measured yet (just started, or
// its client measures none) leaves the sum partial, unknown, not low.
func TestAllocUsage(t *testing.T) {
	usage := func(ticks float64, rss uint64) *nomadapi.ResourceUsage {
		return &nomadapi.ResourceUsage{CpuStats: &nomadapi.CpuStats{TotalTicks: ticks}, MemoryStats: &nomadapi.MemoryStats{RSS: rss}}
	}
	running := &nomadapi.TaskState{State: "running"}
	dead := &nomadapi.TaskState{State: "dead"}
	for _, tc := range []struct {
		name     string
		st       *nomadapi.AllocResourceUsage
		tasks    map[string]*nomadapi.TaskState
		cpu, mem float64
		err      string
	}{
		{name: "measured", st: &nomadapi.AllocResourceUsage{ResourceUsage: usage(664.7, 64<<20), Timestamp: 1,
			Tasks: map[string]*nomadapi.TaskResourceUsage{"burn": {ResourceUsage: usage(664.7, 64<<20)}}},
			tasks: map[string]*nomadapi.TaskState{"burn": running}, cpu: 664.7, mem: 64},
		// As Nomad answers for a client without publish_allocation_metrics.
		{name: "no task measured", st: &nomadapi.AllocResourceUsage{ResourceUsage: usage(0, 0), Tasks: map[string]*nomadapi.TaskResourceUsage{}},
			tasks: map[string]*nomadapi.TaskState{"burn": running}, err: "publish_allocation_metrics"},
		{name: "a running task not measured yet", st: &nomadapi.AllocResourceUsage{ResourceUsage: usage(100, 8<<20), Timestamp: 1,
			Tasks: map[string]*nomadapi.TaskResourceUsage{"app": {ResourceUsage: usage(100, 8<<20)}}},
			tasks: map[string]*nomadapi.TaskState{"app": running, "sidecar": running}, err: "task sidecar not measured"},
		// A finished prestart task is not counted by Nomad, nor missed.
		{name: "a finished task", st: &nomadapi.AllocResourceUsage{ResourceUsage: usage(100, 8<<20), Timestamp: 1,
			Tasks: map[string]*nomadapi.TaskResourceUsage{"app": {ResourceUsage: usage(100, 8<<20)}}},
			tasks: map[string]*nomadapi.TaskState{"app": running, "init": dead}, cpu: 100, mem: 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cpu, mem, err := allocUsage(tc.st, tc.tasks)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrUnmeasured) {
					t.Errorf("error %v, want ErrUnmeasured saying %q", err, tc.err)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case cpu != tc.cpu || mem != tc.mem:
				t.Errorf("%v MHz, %v MB; want %v, %v", cpu, mem, tc.cpu, tc.mem)
			}
		})
	}
}

// TestAllocationListFailureKeepsNodeSeries: when the allocations cannot be
// listed (a 500, or a 403 for a token that may read nodes but no job, as a
// real Nomad answers /v1/allocations?namespace=* for a token of node read
// alone), the nodes' and localities' series, read from host stats, are
// still returned, with the listing's error for the collector to report;
// the task groups' series known from the last read are stale with it.
func TestAllocationListFailureKeepsNodeSeries(t *testing.T) {
	sc := sim.DefaultScenario()
	sc.Tokens = []string{"management"}
	sc.Policies = map[string]sim.Policy{"nodes-only": {Node: "read"}}
	c, url := serveSim(t, sc)
	req := source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc1Web, dc2}}
	check := func(t *testing.T, res source.Result, err error, code string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "list allocations") || !strings.Contains(err.Error(), code) {
			t.Errorf("error %v, want the listing's %s", err, code)
		}
		n := 0
		for _, smp := range res.Samples {
			switch {
			case strings.HasPrefix(smp.Series, "group/"):
				t.Errorf("%s sampled without an allocation list", smp.Series)
			case strings.HasPrefix(smp.Series, "dc1/*/web:"), strings.HasPrefix(smp.Series, "dc2:"):
				n++
			}
		}
		if n != 8 {
			t.Errorf("%d locality samples, want the two localities' four each: %+v", n, res.Samples)
		}
	}

	t.Run("500", func(t *testing.T) {
		client, err := nomadapi.NewClient(&nomadapi.Config{Address: url, SecretID: "management"})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := New(Config{Client: client, AllocStats: true}, nil)
		if _, err := s.Collect(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if err := c.SetFaults(sim.Faults{ErrorRate: 1, PathPrefix: "/v1/allocations"}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.SetFaults(sim.Faults{}) })
		res, err := s.Collect(context.Background(), req)
		check(t, res, err, "500")
		stale := map[string]string{}
		for _, st := range res.Stale {
			stale[st.Series] = st.Reason
		}
		for _, m := range []string{source.CPUMHz, source.MemoryMB, source.Allocs} {
			series := "group/default/web/frontend:" + m
			if r := stale[series]; !strings.Contains(r, "list allocations") || !strings.Contains(r, "500") {
				t.Errorf("%s stale reason %q, want the listing's 500", series, r)
			}
		}
	})

	t.Run("403", func(t *testing.T) {
		client, err := nomadapi.NewClient(&nomadapi.Config{Address: url, SecretID: "nodes-only"})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := New(Config{Client: client, AllocStats: true}, nil)
		res, err := s.Collect(context.Background(), req)
		check(t, res, err, "403 (Permission denied)")
	})
}

// TestReservedResourcesLeaveTheCapacity: a node's capacity is what Nomad's
// scheduler allocates from (AllocsFit: NodeResources less
// ReservedResources, CPU in MHz and memory in MiB, as a real Nomad lists
// them with resources=true); its use, from host stats, includes what the
// reservation is for. The simulator's nodes reserve nothing, so the node
// list is given a reservation on its way to the source.
func TestReservedResourcesLeaveTheCapacity(t *testing.T) {
	c, err := sim.New(sim.DefaultScenario(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	const resCPU, resMem = 1000, 2048
	h := c.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/nodes" {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var nodes []*nomadapi.NodeListStub
		if err := json.Unmarshal(rec.Body.Bytes(), &nodes); err != nil {
			t.Error(err)
		}
		for _, n := range nodes {
			if n.ReservedResources != nil {
				n.ReservedResources.Cpu.CpuShares, n.ReservedResources.Memory.MemoryMB = resCPU, resMem
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		_ = json.NewEncoder(w).Encode(nodes)
	}))
	t.Cleanup(srv.Close)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: client, NodeSeries: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Collect(context.Background(), source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc1Web}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, smp := range res.Samples {
		got[smp.Series] = smp.Value
	}
	nodes, _, err := client.Nodes().List(&nomadapi.QueryOptions{Params: map[string]string{"resources": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	var mhz, capMHz float64
	for _, n := range nodes {
		scope := "node/" + n.ID
		allocCPU := float64(n.NodeResources.Cpu.CpuShares) - resCPU
		allocMem := float64(n.NodeResources.Memory.MemoryMB) - resMem
		if v, want := got[scope+":cpu"], 100*got[scope+":cpu_mhz"]/allocCPU; math.Abs(v-want) > 1e-9 {
			t.Errorf("%s: cpu %v%%, want %v MHz over %v MHz allocatable = %v%%", n.Name, v, got[scope+":cpu_mhz"], allocCPU, want)
		}
		if v, want := got[scope+":memory"], 100*got[scope+":memory_mb"]/allocMem; math.Abs(v-want) > 1e-9 {
			t.Errorf("%s: memory %v%%, want %v MB over %v MB allocatable = %v%%", n.Name, v, got[scope+":memory_mb"], allocMem, want)
		}
		if n.Datacenter == "dc1" && n.NodeClass == "web" {
			mhz += got[scope+":cpu_mhz"]
			capMHz += allocCPU
		}
	}
	if v, want := got["dc1/*/web:cpu"], 100*mhz/capMHz; capMHz == 0 || math.Abs(v-want) > 1e-9 {
		t.Errorf("dc1/*/web:cpu = %v%%, want its nodes' %v MHz over their %v MHz allocatable = %v%%", v, mhz, capMHz, want)
	}
}

// TestCollectionDeadline: a Nomad whose clients do not answer their stats
// (every /v1/client/stats held) holds each read until its StatsTimeout;
// one collection's reads end by its step or twice StatsTimeout, and the
// nodes not read by then are stale saying so, rather than the cycle
// waiting StatsTimeout for each node in turn.
func TestCollectionDeadline(t *testing.T) {
	c, url := serveSim(t, sim.DefaultScenario())
	if err := c.SetFaults(sim.Faults{Holds: []sim.Hold{{Path: "/v1/client/stats"}}}); err != nil {
		t.Fatal(err)
	}
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: client, NodeSeries: true, Concurrency: 1, StatsTimeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Collect(context.Background(), source.Request{Now: c.Now(), Step: time.Second, Localities: []source.Locality{dc1Web, dc2}})
	if err == nil {
		t.Fatal("no error with no node's stats read")
	}
	cut, timedOut := 0, 0
	for _, st := range res.Stale {
		if !strings.HasPrefix(st.Series, source.NodeScope) || !strings.HasSuffix(st.Series, ":"+source.CPUPercent) {
			continue
		}
		switch {
		case strings.Contains(st.Reason, "not read within the collection's 1s for its stats reads"):
			cut++
		case strings.Contains(st.Reason, "context deadline exceeded"):
			timedOut++
		default:
			t.Errorf("%s stale: %s", st.Series, st.Reason)
		}
	}
	t.Logf("%d nodes timed out, %d cut off", timedOut, cut)
	// One read at a time, each held for 300 ms: three or four time out
	// within the second, every other node is cut off.
	if nodes := cut + timedOut; nodes < 10 || timedOut > 4 || cut < nodes-4 {
		t.Errorf("%d nodes timed out and %d were cut off; want at most 4 timed out, the other nodes cut off", timedOut, cut)
	}
}

// TestCapacitiesAreTheBaseOfALocalitysPercent: a locality's CPU percent
// is its ready nodes' use over their allocatable capacity, whatever their
// eligibility: a node drained (ineligible) stays in the base while it is
// up, and a node down leaves it. Capacities lists both with the capacity
// and readiness Collect reads them by, which is what a forecast of a
// drain of some of a locality's nodes reads their share from.
func TestCapacitiesAreTheBaseOfALocalitysPercent(t *testing.T) {
	c, err := sim.New(sim.DefaultScenario(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	var drained, down string // the first two nodes of dc1/*/web
	h := c.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/nodes" {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var nodes []*nomadapi.NodeListStub
		if err := json.Unmarshal(rec.Body.Bytes(), &nodes); err != nil {
			t.Error(err)
		}
		for _, n := range nodes {
			if n.Datacenter != "dc1" || n.NodeClass != "web" {
				continue
			}
			switch {
			case drained == "" || drained == n.ID:
				drained = n.ID
				n.SchedulingEligibility, n.Drain = nomadapi.NodeSchedulingIneligible, true
			case down == "" || down == n.ID:
				down = n.ID
				n.Status = nomadapi.NodeStatusDown
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		_ = json.NewEncoder(w).Encode(nodes)
	}))
	t.Cleanup(srv.Close)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: client, NodeSeries: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, known := s.Capacities(); known {
		t.Error("capacities known before a node list was read")
	}
	res, err := s.Collect(context.Background(), source.Request{Now: c.Now(), Step: time.Minute, Localities: []source.Locality{dc1Web}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, smp := range res.Samples {
		got[smp.Series] = smp.Value
	}
	caps, known := s.Capacities()
	if !known || drained == "" || down == "" {
		t.Fatalf("capacities %+v (known %v); drained %q, down %q", caps, known, drained, down)
	}
	names := s.NodeNames()
	var mhz, capMHz float64
	seen := 0
	for _, n := range caps {
		if n.Datacenter != "dc1" || n.NodeClass != "web" {
			continue
		}
		seen++
		if want := n.Name != names[down]; n.Ready != want {
			t.Errorf("%s: ready %v, want %v", n.Name, n.Ready, want)
		}
		if !n.Ready {
			continue
		}
		for id, name := range names {
			if name == n.Name {
				mhz += got["node/"+id+":cpu_mhz"]
			}
		}
		capMHz += n.CPUMHz
	}
	if seen != 8 {
		t.Errorf("%d nodes of dc1/*/web listed; want its 8", seen)
	}
	if _, ok := got["node/"+down+":cpu_mhz"]; ok {
		t.Error("the node down was measured")
	}
	if _, ok := got["node/"+drained+":cpu_mhz"]; !ok {
		t.Error("the drained node was not measured")
	}
	if v, want := got["dc1/*/web:cpu"], 100*mhz/capMHz; capMHz == 0 || math.Abs(v-want) > 1e-9 {
		t.Errorf("dc1/*/web:cpu = %v%%, want its 7 ready nodes' %v MHz (the drained one's included) over their %v MHz = %v%%", v, mhz, capMHz, want)
	}
}
