package prometheus

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/foreshape/foreshape/internal/promtest"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/plugins/source/sourcetest"
	"github.com/foreshape/foreshape/sim"
)

// iopsQuery reads the simulator's per-node IOPS gauge, which carries the
// datacenter, node_pool and node_class labels.
const iopsQuery = `sum(foreshape_sim_node_iops{ {{.Matchers}} })`

// simMetrics serves the default simulated cluster, a few minutes in, whose
// /v1/metrics?format=prometheus Prometheus scrapes. Its clock stands still
// at the returned virtual time, which stamps every sample it serves.
func simMetrics(t *testing.T) (*httptest.Server, time.Time) {
	c, err := sim.New(sim.DefaultScenario(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return srv, c.Now()
}

// expectedIOPS sums the sim's own node IOPS gauges per locality, read from
// the exposition Prometheus scrapes.
func expectedIOPS(t *testing.T, simURL string, match func(dc string) bool) float64 {
	resp, err := http.Get(simURL + "/v1/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, m := range families["foreshape_sim_node_iops"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if match(labels["datacenter"]) {
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}

// startProm starts Prometheus scraping the sim and returns it with the
// sim's virtual time, the time the samples are stored at (queries ask for
// that time, not the wall's).
func startProm(t *testing.T) (*promtest.Server, *httptest.Server, time.Time) {
	simSrv, at := simMetrics(t)
	prom := promtest.Start(t, promtest.Options{ScrapeInterval: time.Second, AcceptPast: time.Since(at) + 24*time.Hour}, promtest.Target{
		Job: "nomad", Addr: strings.TrimPrefix(simSrv.URL, "http://"),
		MetricsPath: "/v1/metrics", Params: map[string]string{"format": "prometheus"},
	})
	prom.WaitForSeries(t, "foreshape_sim_node_iops", at, 30*time.Second)
	return prom, simSrv, at
}

func TestPrometheusSource(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	// Mostly waits on its own Prometheus (own port, own targets): run
	// beside the others.
	t.Parallel()
	prom, simSrv, now := startProm(t)
	web := source.Locality{Datacenter: "dc2"}
	batch := source.Locality{Datacenter: "dc2", NodeClass: "web"} // the same nodes, another name
	newSource := func(t *testing.T) *Source {
		s, err := New(Config{Address: prom.URL, Queries: map[string]string{source.IOPS: iopsQuery}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("Values", func(t *testing.T) {
		s := newSource(t)
		res, err := s.Collect(context.Background(), source.Request{
			Now: now, Lookback: 30 * time.Second, Step: time.Second,
			Localities: []source.Locality{web, batch, {Datacenter: "dc9"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		last := map[string]float64{}
		for _, smp := range res.Samples {
			last[smp.Series] = smp.Value
		}
		// The sim's clock stands still, so every scrape saw the same values
		// at the same time.
		want2 := expectedIOPS(t, simSrv.URL, func(dc string) bool { return dc == "dc2" })
		wantB := want2
		if got := last["dc2:iops"]; want2 <= 0 || math.Abs(got-want2) > 1e-6*want2 {
			t.Errorf("dc2 iops = %v, want %v (the sum of its nodes' gauges)", got, want2)
		}
		if got := last["dc2/*/web:iops"]; math.Abs(got-wantB) > 1e-6*wantB {
			t.Errorf("dc2/*/web iops = %v, want %v", got, wantB)
		}
		if _, ok := last["dc9:iops"]; ok {
			t.Error("a locality without nodes has samples")
		}
	})

	t.Run("BadQueryIsStale", func(t *testing.T) {
		s, err := New(Config{Address: prom.URL, Queries: map[string]string{
			source.IOPS: iopsQuery,
			"broken":    `sum(rate(test_node_iops{ {{.Matchers}} }))`, // rate without a range: a PromQL error
		}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Collect(context.Background(), source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Stale) != 1 || res.Stale[0].Series != "dc2:broken" {
			t.Errorf("stale = %+v, want the broken query's series", res.Stale)
		}
		if len(res.Samples) == 0 {
			t.Error("the valid query returned nothing")
		}
	})

	t.Run("LocalityQueries", func(t *testing.T) {
		s := newSource(t)
		err := s.SetLocalityQueries([]LocalityQuery{
			{Locality: web, Metric: "cpu_demand", Query: `sum(foreshape_sim_node_cpu_demand_mhz{ {{.Matchers}} })`},
			{Locality: web, Metric: "iops", Query: `count(foreshape_sim_node_iops{ {{.Matchers}} })`},
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Collect(context.Background(), source.Request{Now: now, Lookback: 10 * time.Second, Step: time.Second,
			Localities: []source.Locality{web, batch}})
		if err != nil {
			t.Fatal(err)
		}
		last := map[string]float64{}
		for _, smp := range res.Samples {
			last[smp.Series] = smp.Value
		}
		if last["dc2:cpu_demand"] <= 0 {
			t.Errorf("the policy's own metric is missing: %v", last)
		}
		if last["dc2:iops"] != 6 {
			t.Errorf("dc2:iops = %v, want 6 (the locality's own query counts its nodes)", last["dc2:iops"])
		}
		if _, ok := last["dc2/*/web:cpu_demand"]; ok {
			t.Error("a locality query ran for another locality")
		}
		if err := s.SetLocalityQueries([]LocalityQuery{{Locality: web, Metric: "x", Query: "{{"}}); err == nil {
			t.Error("a broken template was accepted")
		}
	})

	// Without Since or Lookback the source reads the last 10 steps, and
	// no time later than the request's Now (Prometheus would answer for
	// later times from its last sample).
	t.Run("FirstCollectionAndNow", func(t *testing.T) {
		s := newSource(t)
		at := now.Add(30*time.Second + 500*time.Millisecond)
		res, err := s.Collect(context.Background(), source.Request{Now: at, Step: time.Second, Localities: []source.Locality{web}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Samples) == 0 {
			t.Fatal("no samples")
		}
		for _, smp := range res.Samples {
			if smp.Time.After(at) || smp.Time.Before(at.Add(-10*time.Second)) {
				t.Errorf("a sample at %v, want them within the 10 steps up to %v", smp.Time, at)
			}
		}
	})

	t.Run("Unreachable", func(t *testing.T) {
		s, err := New(Config{Address: "http://127.0.0.1:1", Timeout: time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Collect(context.Background(), source.Request{Now: time.Now(), Step: time.Second, Localities: []source.Locality{web}})
		if err == nil {
			t.Error("collect against an unreachable server returned no error")
		}
	})

	t.Run("Conformance", func(t *testing.T) {
		sourcetest.Run(t, func(t *testing.T) sourcetest.Fixture {
			return sourcetest.Fixture{
				Source:     newSource(t),
				Request:    source.Request{Now: now, Lookback: 20 * time.Second, Step: time.Second, Localities: []source.Locality{web, batch}},
				WantSeries: []string{"dc2:iops", "dc2/*/web:iops"},
			}
		})
	})
}

func TestNewRejectsBadTemplates(t *testing.T) {
	if _, err := New(Config{}, nil); err == nil {
		t.Error("empty address accepted")
	}
	if _, err := New(Config{Address: "http://x", Queries: map[string]string{"iops": "{{.Matchers"}}, nil); err == nil {
		t.Error("unparseable template accepted")
	}
}

func TestMatchers(t *testing.T) {
	s, err := New(Config{Address: "http://x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Matchers(source.Locality{Datacenter: "dc1", NodeClass: "m5"}), `datacenter="dc1",node_class="m5"`; got != want {
		t.Errorf("Matchers = %s, want %s", got, want)
	}
}
