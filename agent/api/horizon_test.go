package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFormatHorizon: a gauge's horizon label is the duration as a policy
// writes it; the default 30m horizon was exported as horizon="3" (and 10m
// would have been "1"): the trailing zeros of "30m" were cut as if "0m".
func TestFormatHorizon(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5m", 10 * time.Minute: "10m", 15 * time.Minute: "15m", 30 * time.Minute: "30m",
		time.Hour: "1h", 90 * time.Minute: "1h30m", 2 * time.Hour: "2h", 20 * time.Hour: "20h",
		30 * time.Second: "30s", 90 * time.Second: "1m30s", time.Hour + 30*time.Second: "1h0m30s",
	} {
		if got := formatHorizon(d); got != want {
			t.Errorf("formatHorizon(%v) = %q, want %q", d, got, want)
		}
	}
}

// The default horizons are exported as 5m, 15m, 30m and 1h.
func TestMetricsHorizonLabels(t *testing.T) {
	srv, _ := newTestServer(t, Options{})
	resp, err := http.Get(srv.URL + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, h := range []string{"5m", "15m", "30m", "1h"} {
		if !strings.Contains(string(body), `foreshape_forecast{horizon="`+h+`",`) {
			t.Errorf("no foreshape_forecast gauge with horizon=%q:\n%s", h, body)
		}
	}
}

// TestMetricsHorizonsOnSteps: a default horizon is exported only where the
// forecast has a step exactly that far ahead, within its horizon
// (docs/telemetry.md): a forecast of three 10m steps serves 30m alone, not
// 5m or 15m (no step there) nor 1h (beyond it).
func TestMetricsHorizonsOnSteps(t *testing.T) {
	f := testForecast()
	f.Step = "10m"
	f.Times, f.Mean, f.Bands = f.Times[:3], f.Mean[:3], [][]float64{f.Bands[0][:3], f.Bands[1][:3], f.Bands[2][:3]}
	for i := range f.Times {
		f.Times[i] = f.Origin.Add(time.Duration(i+1) * 10 * time.Minute)
	}
	s, err := NewServer(&fakeBackend{forecasts: []Forecast{f}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for h, want := range map[string]bool{"5m": false, "15m": false, "30m": true, "1h": false} {
		if got := strings.Contains(string(body), `foreshape_forecast{horizon="`+h+`",`); got != want {
			t.Errorf("horizon %s served: %v, want %v", h, got, want)
		}
	}
	if n := strings.Count(string(body), "\nforeshape_forecast{"); n != 4 {
		t.Errorf("%d foreshape_forecast series, want 4 (30m by three quantiles and mean)", n)
	}
}
