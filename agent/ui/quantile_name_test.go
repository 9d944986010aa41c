package ui

import (
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
)

// TestChartNamesThePlanningQuantile: the chart's planning line and its
// text alternative name the planning quantile as the policy writes it:
// 0.57 read p56.99999999999999 on the line and p57.0 in the summary, and
// 0.9999 read p100 there.
func TestChartNamesThePlanningQuantile(t *testing.T) {
	for _, tc := range []struct {
		q    float64
		want string
	}{{0.9, "p90"}, {0.57, "p57"}, {0.9999, "p99.99"}} {
		f := testForecast(func(f *api.Forecast) {
			f.PlanningQuantile = tc.q
			f.Quantiles = []float64{0.1, 0.5, tc.q}
		})
		if c := buildChart("x", chartInput{Forecast: f}); c.PlanningLabel != tc.want {
			t.Errorf("quantile %v: chart label %q; want %q", tc.q, c.PlanningLabel, tc.want)
		}
		if got := summary(f); !strings.Contains(got, "Planning quantile "+tc.want+" peaks at ") {
			t.Errorf("quantile %v: summary %q; want it to name %s", tc.q, got, tc.want)
		}
	}
}
