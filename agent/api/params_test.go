package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
)

// oneForecastBackend answers one ready forecast of dc1/web's cpu, with
// the history it starts from.
type oneForecastBackend struct{ nopBackend }

func (oneForecastBackend) Forecasts(context.Context) []api.Forecast {
	origin := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return []api.Forecast{{Policy: "web", Locality: "dc1/web", Metric: "cpu", Series: "dc1/web:cpu", Status: api.ForecastReady,
		Origin: origin, Step: "5m0s", Times: []time.Time{origin.Add(5 * time.Minute)}, Mean: []float64{50},
		Quantiles: []float64{0.5}, Bands: [][]float64{{50}}, History: []api.Point{{Time: origin, Value: 49}}}}
}

func serveForecasts(t *testing.T, opts api.Options) string {
	t.Helper()
	s, err := api.NewServer(oneForecastBackend{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

// An endpoint refuses a query parameter it does not take, naming it and
// those it takes: ?metric=cpu on /v1/hotspots answered every metric's
// hotspots, ?status=running on /v1/queue the whole queue, and
// ?history=yes on /v1/forecasts no history, each with a 200.
func TestUnknownParameterRefused(t *testing.T) {
	base := serveForecasts(t, api.Options{Act: apitest.New()})
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/v1/hotspots?metric=cpu", 400, "metric: GET /v1/hotspots takes no query parameter"},
		{"/v1/anomalies?series=dc1/web:cpu", 400, "series: GET /v1/anomalies takes no query parameter"},
		{"/v1/status?verbose=1", 400, "verbose: GET /v1/status takes no query parameter"},
		{"/v1/hotspots?metric=cpu&metric=memory", 400, "metric: GET /v1/hotspots takes no query parameter"},
		{"/v1/forecasts?metrc=cpu", 400, "metrc: GET /v1/forecasts takes only metric, history"},
		{"/v1/forecast/dc1/web?locality=dc2", 400, "locality: GET /v1/forecast/dc1/web takes only metric, history"},
		{"/v1/forecasts?history=yes", 400, `history: "yes" is not a boolean (true, false, 1, 0, t, f, TRUE, FALSE, True or False)`},
		{"/v1/forecast/dc1/web?history=yes", 400, `history: "yes" is not a boolean (true, false, 1, 0, t, f, TRUE, FALSE, True or False)`},
		{"/v1/series?node=n3", 400, "node: GET /v1/series takes only prefix"},
		{"/v1/queue?status=running", 400, "status: GET /v1/queue takes only state, locality, index, wait"},
		{"/v1/queue/mr-1?state=running", 400, "state: GET /v1/queue/mr-1 takes no query parameter"},
		{"/v1/decisions?type=scale", 400, "type: GET /v1/decisions takes only policy, locality, kind, request, since, limit"},
		{"/v1/reservations?job=x", 400, "job: GET /v1/reservations takes only policy, locality, state, request"},
		{"/v1/forecasts?metric=cpu&history=true", 200, ""},
		// Health checks' and the scrape's endpoints answer as if a
		// parameter they do not take had not been given (docs/api.md).
		{"/v1/health?x=1", 200, ""},
		{"/v1/ready?x=1", 200, ""},
		{"/v1/metrics?x=1", 200, ""},
		// Given twice too: a scrape's params (Prometheus's params:
		// {module: [a, b]}) were a 400 "given 2 times" on /v1/metrics.
		{"/v1/metrics?module=a&module=b", 200, ""},
		{"/v1/health?x=1&x=2", 200, ""},
		{"/v1/ready?x=1&x=2", 200, ""},
		{"/v1/forecasts?history=false", 200, ""},
		{"/v1/forecasts?history=1", 200, ""},
		{"/v1/forecast/dc1/web?history=f", 200, ""},
		{"/v1/series?prefix=dc1", 200, ""},
		{"/v1/queue?state=pending&locality=dc1", 200, ""},
		{"/v1/decisions?kind=submit&limit=3", 200, ""},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var e api.Error
		if tc.code != 200 {
			_ = json.NewDecoder(resp.Body).Decode(&e)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || e.Error != tc.want {
			t.Errorf("GET %s: %d %q; want %d %q", tc.path, resp.StatusCode, e.Error, tc.code, tc.want)
		}
	}
}

// GET /v1/forecast/LOCALITY carries the history the forecast starts from
// (forecast show charts it) unless ?history=false; GET /v1/forecasts only
// with ?history=true. The single locality's answer ignored history=false.
func TestForecastHistoryParameter(t *testing.T) {
	base := serveForecasts(t, api.Options{})
	for _, tc := range []struct {
		path        string
		withHistory bool
	}{
		{"/v1/forecast/dc1/web", true},
		{"/v1/forecast/dc1/web?history=true", true},
		{"/v1/forecast/dc1/web?history=false", false},
		{"/v1/forecasts", false},
		{"/v1/forecasts?history=false", false},
		{"/v1/forecasts?history=true", true},
		// strconv.ParseBool's other forms, as docs/api.md says.
		{"/v1/forecast/dc1/web?history=0", false},
		{"/v1/forecasts?history=1", true},
		{"/v1/forecasts?history=TRUE", true},
		{"/v1/forecast/dc1/web?history=F", false},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var fs []api.Forecast
		err = json.NewDecoder(resp.Body).Decode(&fs)
		resp.Body.Close()
		if err != nil || len(fs) != 1 {
			t.Fatalf("GET %s: %d forecasts, %v", tc.path, len(fs), err)
		}
		if got := len(fs[0].History) > 0; got != tc.withHistory {
			t.Errorf("GET %s: history %v, want %v", tc.path, got, tc.withHistory)
		}
	}
}
