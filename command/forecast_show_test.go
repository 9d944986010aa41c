package command

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// TestForecastShowPrintsWhatItsHelpSays: forecast show prints the model
// and why and the workload, then the chart and its legend, then the
// hotspot, in the order its -help gives them (the help said the model and
// the workload followed the chart, and did not mention the hotspot).
func TestForecastShowPrintsWhatItsHelpSays(t *testing.T) {
	help := strings.Join(strings.Fields((&ForecastShowCommand{}).Help()), " ")
	for _, want := range []string{
		"It prints the model that produced the forecast and why, and the locality's workload",
		"then the chart: the recent history, the median forecast, the planning quantile and the headroom line, with a legend;",
		"then, when one is predicted, the hotspot: when the planning quantile first crosses the line, how likely a crossing is, and the peak.",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("-help does not say %q:\n%s", want, help)
		}
	}
	addr := stubAgent(t)
	code, out, errOut := runCLI(t, "forecast", "show", "-address", addr, "-metric", "cpu", "dc1/web")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	at := -1
	for _, part := range []string{"model: ", "why: ", "workload: ", "┤", "─ history   · p50   ^ p90 (planning)   = headroom line 80", "HOTSPOT: p90 crosses 80"} {
		i := strings.Index(out, part)
		if i <= at {
			t.Errorf("%q is not after what -help lists before it (at %d, the one before at %d):\n%s", part, i, at, out)
		}
		at = i
	}
}

// -metric= (empty), as -help says, charts every metric of the locality:
// the flag was taken as given and sent as no metric, undocumented.
func TestForecastShowEveryMetric(t *testing.T) {
	if help := strings.Join(strings.Fields((&ForecastShowCommand{}).Help()), " "); !strings.Contains(help, "-metric= (empty) charts every metric forecast") {
		t.Errorf("-help does not say what -metric= does:\n%s", help)
	}
	code, out, errOut := runCLI(t, "forecast", "show", "-address", stubAgent(t), "-metric=", "dc1/web")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, m := range []string{"dc1/web  cpu", "dc1/web  memory", "dc1/web  queue_depth"} {
		if !strings.Contains(out, m) {
			t.Errorf("-metric= does not chart %q:\n%s", m, out)
		}
	}
}

// escapeBackend answers a forecast and a hotspot whose text holds terminal
// escapes, as a stale series' reason can carry what a source's server
// answered.
type escapeBackend struct{ stubBackend }

const escape = "\x1b]0;owned\a\x1b[2J"

func (escapeBackend) Forecasts(context.Context) []api.Forecast {
	return []api.Forecast{
		{Policy: "web", Locality: "dc1/web" + escape, Metric: "cpu", Status: api.ForecastStale, Note: "stale since 09:00: " + escape},
		{Policy: "web", Locality: "dc1/web" + escape, Metric: "memory", Status: api.ForecastReady, Model: "ets" + escape, Reason: "why" + escape,
			Origin: stubOrigin, Step: "5m", Times: []time.Time{stubOrigin.Add(5 * time.Minute)}, Mean: []float64{50}},
	}
}

func (escapeBackend) Hotspots(context.Context) []api.Hotspot {
	return []api.Hotspot{{Policy: "web", Locality: "dc1/web" + escape, Metric: "cpu", At: stubOrigin, Probability: 0.9, Line: 80, Peak: 90}}
}

// TestForecastShowAndHotspotsEscapeTheAgentsText: forecast show and
// hotspots print a control character in what the agent sent escaped, as
// the queue's tables do, so that it cannot drive the terminal.
func TestForecastShowAndHotspotsEscapeTheAgentsText(t *testing.T) {
	s, err := api.NewServer(escapeBackend{}, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, args := range [][]string{
		{"forecast", "show", "-address", srv.URL, "-metric=", "dc1/web" + escape},
		{"hotspots", "-address", srv.URL},
	} {
		code, out, errOut := runCLI(t, args...)
		if code != ExitOK || strings.ContainsAny(out, "\x1b\a") || !strings.Contains(out, `\x1b]0;owned\a\x1b[2J`) {
			t.Errorf("%s: exit %d, printed %q (stderr %q); want the escapes escaped", args[0], code, out, errOut)
		}
	}
}

// TestForecastShowSaysWhenTheHotspotIsOnTheRest: a hotspot read on the
// nodes that stay while a drain of some of the locality's nodes runs
// prints its detail on the line under the HOTSPOT line, as -help says and
// as foreshape hotspots prints it under its table; one read on the
// locality as measured prints none.
func TestForecastShowSaysWhenTheHotspotIsOnTheRest(t *testing.T) {
	if help := strings.Join(strings.Fields((&ForecastShowCommand{}).Help()), " "); !strings.Contains(help,
		"One read on the nodes that stay while a drain of some of the locality's nodes runs says so on the line under it") {
		t.Errorf("-help does not say how a hotspot read on the rest shows:\n%s", help)
	}
	at := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	const detail = "on the nodes of dc1/*/web that stay while dc1-rack-a-* are drained: p90 48.0% ×2.00 = 96.0% over the 75% line"
	f := api.Forecast{Policy: "dc1-web", Locality: "dc1/*/web", Metric: "cpu", Status: api.ForecastReady, Origin: at.Add(-5 * time.Minute), Step: "5m0s",
		Times: []time.Time{at, at.Add(5 * time.Minute)}, Mean: []float64{40, 44}, Quantiles: []float64{0.9}, Bands: [][]float64{{46, 48}}, PlanningQuantile: 0.9,
		Hotspot: &api.Hotspot{Policy: "dc1-web", Locality: "dc1/*/web", Metric: "cpu", At: at, Probability: 1, Quantile: 0.9, Line: 75, Peak: 96, Detail: detail}}
	want := "HOTSPOT: p90 crosses 75 at 2026-01-05T08:00:00Z (probability 1.00, peak 96)\n  " + detail + "\n"
	if out := renderForecast(f, 40, 4); !strings.HasSuffix(out, want) {
		t.Errorf("printed\n%s\nwant it to end with\n%s", out, want)
	}
	f.Hotspot.Detail = ""
	if out := renderForecast(f, 40, 4); !strings.HasSuffix(out, "peak 96)\n") {
		t.Errorf("a hotspot read as measured printed\n%s\nwant nothing under its HOTSPOT line", out)
	}
}
