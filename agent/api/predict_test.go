package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/forecast"
	"github.com/foreshape/foreshape/agent/predict"
	"github.com/foreshape/foreshape/policies"
)

var web = policies.Locality{Datacenter: "dc1", NodePool: "web"}

func TestFromForecast(t *testing.T) {
	origin := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	w := &predict.Workload{Kind: forecast.Diurnal, SeasonalStrength: 0.6, Bound: forecast.CPUBound, Points: 288, From: origin.Add(-24 * time.Hour)}
	f := predict.Forecast{
		Policy: "web", Locality: web, Metric: "cpu", Origin: origin, Step: 5 * time.Minute, Model: "ets",
		Times: []time.Time{origin.Add(5 * time.Minute)}, Mean: []float64{50}, Quantiles: []float64{0.9}, Bands: [][]float64{{60}},
		PlanningQuantile: 0.9, Line: 80, HasLine: true, Workload: w,
		Events: []predict.Event{{Kind: predict.EventDrain, Schedule: "rack-a", From: policies.Locality{Datacenter: "dc1", NodePool: "rack-a"},
			Start: origin.Add(time.Hour), End: origin.Add(2 * time.Hour), Added: 15, Known: true, Detail: "its demand (+15.0) moves here"}},
		Hotspot: &predict.Hotspot{Policy: "web", Locality: web, Metric: "cpu", At: origin.Add(time.Hour), Probability: 0.7,
			Detail: "on the nodes of dc1/web that stay while dc1-rack-a-* are drained"},
	}
	got := FromForecast(f)
	if got.Status != ForecastReady || got.Series != "dc1/web:cpu" || got.Step != "5m0s" || got.Line == nil || *got.Line != 80 ||
		got.Hotspot == nil || got.Hotspot.Locality != "dc1/web" || got.Hotspot.Detail != f.Hotspot.Detail || got.Workload == nil || got.Workload.Kind != "diurnal" {
		t.Errorf("FromForecast = %+v", got)
	}
	wantEvent := `drain "rack-a" of dc1/rack-a 2026-01-05T09:00:00Z–2026-01-05T10:00:00Z: its demand (+15.0) moves here`
	if len(got.Events) != 1 || got.Events[0] != wantEvent {
		t.Errorf("events = %q, want %q", got.Events, wantEvent)
	}
	if len(got.EventWindows) != 1 || got.EventWindows[0].From != "dc1/rack-a" || got.EventWindows[0].Kind != "drain" {
		t.Errorf("event windows = %+v", got.EventWindows)
	}
	f.HasLine = false
	if got := FromForecast(f); got.Line != nil {
		t.Error("a metric without a line got one")
	}
}

func TestFromPending(t *testing.T) {
	first := time.Date(2026, 1, 5, 6, 12, 0, 0, time.UTC)
	got := FromPending(predict.Pending{Policy: "web", Locality: web, Metric: "cpu", State: predict.WarmingUp,
		Points: 5, Needed: 12, FirstAt: first}, nil)
	if got.Status != ForecastWarmingUp || got.Note != "warming up: 5 of 12 points, first forecast at 2026-01-05T06:12:00Z" ||
		got.Warmup == nil || got.Warmup.Points != 5 || got.Ready() {
		t.Errorf("FromPending = %+v", got)
	}
	stale := FromPending(predict.Pending{Policy: "web", Locality: web, Metric: "cpu", State: predict.Stale, Reason: "stale: no sample since …"}, nil)
	if stale.Status != ForecastStale || stale.Note != "stale: no sample since …" || stale.Warmup != nil {
		t.Errorf("FromPending(stale) = %+v", stale)
	}
}

// pendingBackend serves one ready forecast and one warming up.
type pendingBackend struct {
	fakeBackend
	leader bool
}

func (b *pendingBackend) Status(context.Context) Status {
	return Status{IsLeader: b.leader, Leader: "10.0.0.2:7576"}
}

func TestPendingForecastsAreListedNotExported(t *testing.T) {
	warming := FromPending(predict.Pending{Policy: "web", Locality: web, Metric: "memory", State: predict.WarmingUp,
		Points: 3, Needed: 12, FirstAt: time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)}, nil)
	ready := testForecast()
	ready.Status, ready.Reason, ready.PlanningQuantile = ForecastReady, "auto: ets won the backtest", 0.9
	b := &pendingBackend{fakeBackend: fakeBackend{forecasts: []Forecast{ready, warming}}, leader: true}
	s, err := NewServer(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := &Client{Address: srv.URL}
	ctx := context.Background()
	fs, err := c.Forecast(ctx, "dc1/web", "memory")
	if err != nil || len(fs) != 1 || fs[0].Status != ForecastWarmingUp || !strings.Contains(fs[0].Note, "warming up: 3 of 12") {
		t.Errorf("GET /v1/forecast/dc1/web?metric=memory = %+v, %v", fs, err)
	}
	// A forecast that is not ready has no bands nor anything about them
	// in its JSON (they read as a forecast made at year 1 by no model,
	// planned at quantile 0); a ready one has all of them.
	raw := map[string][]map[string]any{}
	for _, status := range []string{"warming_up", "ready"} {
		resp, err := http.Get(srv.URL + "/v1/forecast/dc1/web?metric=" + map[string]string{"warming_up": "memory", "ready": "cpu"}[status])
		if err != nil {
			t.Fatal(err)
		}
		var fs []map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&fs); err != nil || len(fs) != 1 || fs[0]["status"] != status {
			t.Fatalf("GET /v1/forecast/dc1/web (%s): %v, %v", status, fs, err)
		}
		resp.Body.Close()
		raw[status] = fs
	}
	for _, key := range []string{"origin", "step", "model", "reason", "times", "mean", "quantiles", "bands", "planning_quantile"} {
		if v, ok := raw["warming_up"][0][key]; ok {
			t.Errorf("the forecast warming up has %q: %v", key, v)
		}
		if _, ok := raw["ready"][0][key]; !ok {
			t.Errorf("the ready forecast has no %q", key)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), `metric="memory"`) {
		t.Error("a series still warming up is exported as a gauge")
	}
	if !strings.Contains(string(body), `metric="cpu"`) {
		t.Error("the ready forecast is not exported")
	}
	// A metric the locality's policies do not forecast: the 404 names
	// those they do; a locality no policy forecasts: the localities.
	for _, tc := range []struct{ loc, metric, want string }{
		{"dc1/web", "disk", `no forecast for locality "dc1/web" metric "disk": its policies forecast cpu, memory`},
		{"web", "disk", `no forecast for locality "web" metric "disk": its policies forecast cpu, memory`},
		{"dc9", "cpu", `no forecast for locality "dc9" metric "cpu": no policy forecasts it; the localities forecast: dc1/web`},
	} {
		if _, err := c.Forecast(ctx, tc.loc, tc.metric); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("GET /v1/forecast/%s?metric=%s: %v; want %q", tc.loc, tc.metric, err, tc.want)
		}
	}
	// GET /v1/forecasts?metric= keeps that metric's forecasts; one no
	// policy forecasts is a 404 naming those they do.
	var mem []Forecast
	if err := c.get(ctx, "/v1/forecasts", url.Values{"metric": {"memory"}}, &mem); err != nil || len(mem) != 1 || mem[0].Metric != "memory" {
		t.Errorf("GET /v1/forecasts?metric=memory = %+v, %v; want the one memory forecast", mem, err)
	}
	if err := c.get(ctx, "/v1/forecasts", url.Values{"metric": {"bogus"}}, &mem); err == nil ||
		!strings.Contains(err.Error(), `no forecast of metric "bogus": the policies forecast cpu, memory`) {
		t.Errorf("GET /v1/forecasts?metric=bogus: %v; want a 404 naming cpu and memory", err)
	}
	// A follower whose leader has published nothing yet says so.
	b.leader, b.forecasts = false, nil
	_, err = c.Forecast(ctx, "dc1/web", "cpu")
	if err == nil || !strings.Contains(err.Error(), "this agent does not lead, and the leader (10.0.0.2:7576) has published no forecast yet") {
		t.Errorf("follower: err = %v", err)
	}
}
