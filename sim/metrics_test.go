package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// promFamilies reads the cluster's Prometheus text through the API.
func promFamilies(t *testing.T, client *api.Client) map[string]*dto.MetricFamily {
	t.Helper()
	raw, err := client.Operator().Metrics(&api.QueryOptions{Params: map[string]string{"format": "prometheus"}})
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("prometheus text does not parse: %v", err)
	}
	return fams
}

// A scraper stores the sim's samples at the sim's virtual time, not at the
// wall time it scraped them.
func TestPrometheusTextCarriesVirtualTime(t *testing.T) {
	c := newTestCluster(t, webJob)
	client := newTestAPI(t, c, "")
	for _, step := range []time.Duration{time.Minute, 90 * time.Second} {
		if err := c.Step(step); err != nil {
			t.Fatal(err)
		}
		want := c.Now().UnixMilli()
		n := 0
		for name, f := range promFamilies(t, client) {
			for _, m := range f.GetMetric() {
				n++
				if m.TimestampMs == nil || m.GetTimestampMs() != want {
					t.Fatalf("%s sample stamped %v, want the virtual time %v (%s)", name, m.TimestampMs, want, c.Now())
				}
			}
		}
		if n == 0 {
			t.Fatal("no samples")
		}
	}
}
