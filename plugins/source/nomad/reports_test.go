package nomad

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/sim"
)

// countingTransport counts requests by path prefix.
type countingTransport struct {
	mu    sync.Mutex
	paths map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.paths[r.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for p, k := range c.paths {
		if strings.HasPrefix(p, prefix) {
			n += k
		}
	}
	return n
}

type staticReports map[string]Report

func (s staticReports) NodeReport(id string, _ time.Time) (Report, bool) {
	r, ok := s[id]
	return r, ok
}

// TestCollectUsesClientReports: nodes whose client agent reported are not
// asked for stats; their samples are the reported values; the rest are
// read from Nomad as before. ReadReport reads what a client agent sends.
func TestCollectUsesClientReports(t *testing.T) {
	c, err := sim.New(sim.DefaultScenario(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(5 * time.Minute); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	ct := &countingTransport{paths: map[string]int{}}
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL, HttpClient: &http.Client{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, err := client.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reports := staticReports{}
	reported := map[string]bool{}
	for i, n := range nodes {
		if i%2 == 1 || n.Status != "ready" {
			continue
		}
		r, err := ReadReport(ctx, client, n.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Allocs) == 0 && i == 0 {
			t.Errorf("node %s: no allocation usage read", n.Name)
		}
		r.CPUMHz = 1234 + float64(i) // mark the values as the reports'
		reports[n.ID], reported[n.ID] = r, true
	}
	s, err := New(Config{Client: client, NodeSeries: true, AllocStats: true, Reports: reports}, nil)
	if err != nil {
		t.Fatal(err)
	}
	statsBefore, allocBefore := ct.count("/v1/client/stats"), ct.count("/v1/client/allocation/")
	res, err := s.Collect(ctx, source.Request{Now: c.Now(), Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, smp := range res.Samples {
		got[smp.Series] = smp.Value
	}
	ready := 0
	for i, n := range nodes {
		if n.Status != "ready" {
			continue
		}
		ready++
		v, ok := got[source.SeriesName(source.NodeScope+n.ID, source.CPUMHz)]
		if reported[n.ID] && (!ok || v != 1234+float64(i)) {
			t.Errorf("node %s: cpu_mhz %v; want the reported %v", n.Name, v, 1234+float64(i))
		}
		if !reported[n.ID] && (!ok || v == 1234+float64(i)) {
			t.Errorf("node %s without a report: cpu_mhz %v, %v", n.Name, v, ok)
		}
	}
	stats := ct.count("/v1/client/stats") - statsBefore
	allocStats := ct.count("/v1/client/allocation/") - allocBefore
	if want := ready - len(reported); stats != want {
		t.Errorf("%d node stats requests; want %d, one per node without a report", stats, want)
	}
	t.Logf("%d ready nodes, %d reported: %d node stats and %d allocation stats requests", ready, len(reported), stats, allocStats)
	var reportedAllocs int
	for _, r := range reports {
		reportedAllocs += len(r.Allocs)
	}
	allocs, _, _ := client.Allocations().List(nil)
	running := 0
	for _, a := range allocs {
		if a.ClientStatus == "running" {
			running++
		}
	}
	if allocStats != running-reportedAllocs || reportedAllocs == 0 {
		t.Errorf("%d allocation stats requests for %d running allocations, %d reported; want the reported ones skipped", allocStats, running, reportedAllocs)
	}
}
