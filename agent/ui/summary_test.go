package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// TestSummarySaysWhenTheHotspotIsOnTheRest: a chart's text alternative
// (its desc, and the "why" under it) of a forecast whose hotspot is read
// on the nodes that stay while a drain of some of the locality's nodes
// runs says so, as the call-out above the chart does: it said the
// planning quantile peaks at 40% against a 75% line and then that the
// hotspot crosses the line, without saying why.
func TestSummarySaysWhenTheHotspotIsOnTheRest(t *testing.T) {
	at := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	line := 75.0
	const detail = "on the nodes of dc2 that stay while dc2-a-* are drained: p90 40.0% ×2.00 = 80.0% over the 75% line"
	f := api.Forecast{Policy: "dc2-web", Locality: "dc2", Metric: "cpu", Status: api.ForecastReady, Times: []time.Time{at}, Mean: []float64{35},
		Quantiles: []float64{0.9}, Bands: [][]float64{{40}}, PlanningQuantile: 0.9, Line: &line,
		Hotspot: &api.Hotspot{Policy: "dc2-web", Locality: "dc2", Metric: "cpu", At: at, Probability: 1, Quantile: 0.9, Line: 75, Peak: 80, Detail: detail}}
	if got := summary(f); !strings.HasSuffix(got, "Hotspot: crosses the line at 08:00 with probability 100%. It is "+detail+".") {
		t.Errorf("summary %q; want it to end with the hotspot and its detail", got)
	}
	f.Hotspot.Detail = ""
	if got := summary(f); !strings.HasSuffix(got, "Hotspot: crosses the line at 08:00 with probability 100%.") {
		t.Errorf("summary %q; want it to end with the hotspot alone", got)
	}
}
