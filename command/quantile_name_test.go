package command

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// TestForecastShowNamesThePlanningQuantile: forecast show's legend and
// HOTSPOT line name the planning quantile as the policy writes it: 0.57
// printed as p56.99999999999999.
func TestForecastShowNamesThePlanningQuantile(t *testing.T) {
	at := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		q    float64
		want string
	}{{0.9, "p90"}, {0.57, "p57"}, {0.999, "p99.9"}} {
		f := api.Forecast{Policy: "dc1-web", Locality: "dc1", Metric: "cpu", Status: api.ForecastReady, Origin: at.Add(-5 * time.Minute), Step: "5m0s",
			Times: []time.Time{at, at.Add(5 * time.Minute)}, Mean: []float64{40, 44}, Quantiles: []float64{tc.q}, Bands: [][]float64{{46, 48}}, PlanningQuantile: tc.q,
			Hotspot: &api.Hotspot{Policy: "dc1-web", Locality: "dc1", Metric: "cpu", At: at, Probability: 1, Quantile: tc.q, Line: 45, Peak: 48}}
		out := renderForecast(f, 40, 4)
		if !strings.Contains(out, tc.want+" (planning)") || !strings.Contains(out, "HOTSPOT: "+tc.want+" crosses 45") {
			t.Errorf("quantile %v: printed\n%s\nwant %s in the legend and the HOTSPOT line", tc.q, out, tc.want)
		}
	}
}
