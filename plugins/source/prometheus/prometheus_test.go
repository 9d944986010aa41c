package prometheus

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/foreshape/foreshape/internal/promtest"
	"github.com/foreshape/foreshape/plugins/source"
	"github.com/foreshape/foreshape/plugins/source/sourcetest"
)

const iopsQuery = `sum(test_node_iops{ {{.Matchers}} })`

// exporter serves per-node IOPS gauges labelled with their locality.
func exporter(t *testing.T) *httptest.Server {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_node_iops", Help: "IOPS per node."},
		[]string{"node_id", "datacenter", "node_pool", "node_class"})
	reg.MustRegister(g)
	g.WithLabelValues("n1", "dc1", "web", "m5").Set(100)
	g.WithLabelValues("n2", "dc1", "web", "m5").Set(250)
	g.WithLabelValues("n3", "dc1", "batch", "c5").Set(40)
	g.WithLabelValues("n4", "dc2", "web", "m5").Set(7)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv
}

// sharedProm is one Prometheus for every subtest: starting one takes seconds.
func startProm(t *testing.T) (*promtest.Server, *httptest.Server) {
	exp := exporter(t)
	prom := promtest.Start(t, time.Second, promtest.Target{Job: "nodes", Addr: strings.TrimPrefix(exp.URL, "http://")})
	// Wait for a few scrapes, so that a range query ending on a whole
	// second already holds points.
	prom.WaitForSeries(t, "count_over_time(test_node_iops[1m]) > 2", 30*time.Second)
	return prom, exp
}

func TestPrometheusSource(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	prom, _ := startProm(t)
	web := source.Locality{Datacenter: "dc1", NodePool: "web"}
	batch := source.Locality{Datacenter: "dc1", NodePool: "batch"}
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
			Now: time.Now(), Lookback: 30 * time.Second, Step: time.Second,
			Localities: []source.Locality{web, batch, {Datacenter: "dc9"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		last := map[string]float64{}
		for _, smp := range res.Samples {
			last[smp.Series] = smp.Value
		}
		if got := last["dc1/web:iops"]; got != 350 {
			t.Errorf("dc1/web iops = %v, want 350 (100+250)", got)
		}
		if got := last["dc1/batch:iops"]; got != 40 {
			t.Errorf("dc1/batch iops = %v, want 40", got)
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
		res, err := s.Collect(context.Background(), source.Request{Now: time.Now(), Lookback: 10 * time.Second, Step: time.Second, Localities: []source.Locality{web}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Stale) != 1 || res.Stale[0].Series != "dc1/web:broken" {
			t.Errorf("stale = %+v, want the broken query's series", res.Stale)
		}
		if len(res.Samples) == 0 {
			t.Error("the valid query returned nothing")
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
				Request:    source.Request{Now: time.Now(), Lookback: 20 * time.Second, Step: time.Second, Localities: []source.Locality{web, batch}},
				WantSeries: []string{"dc1/web:iops", "dc1/batch:iops"},
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
