package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeBackend struct{ forecasts []Forecast }

func (f *fakeBackend) Status(context.Context) Status {
	return Status{Node: "n1", State: "Leader", IsLeader: true, Series: 2,
		Stale: []StaleSeries{{Series: "node/n3:cpu", Reason: "stats unreachable"}}}
}
func (f *fakeBackend) Policies(context.Context) []Policy { return nil }
func (f *fakeBackend) Series(context.Context) []Series {
	return []Series{{Series: "dc1/web:cpu"}, {Series: "node/n3:cpu", Stale: true}}
}
func (f *fakeBackend) Forecasts(context.Context) []Forecast {
	return append([]Forecast(nil), f.forecasts...)
}
func (f *fakeBackend) Hotspots(context.Context) []Hotspot  { return nil }
func (f *fakeBackend) Anomalies(context.Context) []Anomaly { return nil }

func testForecast() Forecast {
	origin := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := Forecast{Policy: "web", Locality: "dc1/web", Metric: "cpu", Series: "dc1/web:cpu", Origin: origin,
		Step: "5m", Model: "ets", Quantiles: []float64{0.1, 0.5, 0.9}}
	for i := 1; i <= 12; i++ {
		f.Times = append(f.Times, origin.Add(time.Duration(i)*5*time.Minute))
		f.Mean = append(f.Mean, float64(50+i))
	}
	for _, d := range []float64{-10, 0, 10} {
		band := make([]float64, 12)
		for i := range band {
			band[i] = f.Mean[i] + d
		}
		f.Bands = append(f.Bands, band)
	}
	f.History = []Point{{Time: origin, Value: 50}}
	return f
}

func newTestServer(t *testing.T, opts Options) (*httptest.Server, *Client) {
	t.Helper()
	s, err := NewServer(&fakeBackend{forecasts: []Forecast{testForecast()}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, &Client{Address: srv.URL}
}

func TestClientRoundTrip(t *testing.T) {
	_, c := newTestServer(t, Options{})
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || st.Node != "n1" || len(st.Stale) != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	fs, err := c.Forecasts(ctx)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Forecasts = %v, %v", fs, err)
	}
	if fs[0].History != nil {
		t.Error("history returned without ?history=true")
	}
	if got := fs[0].Band(0.9); len(got) != 12 || got[0] != 61 {
		t.Errorf("p90 band = %v", got)
	}
	one, err := c.Forecast(ctx, "dc1/web", "cpu")
	if err != nil || len(one) != 1 || one[0].Metric != "cpu" {
		t.Fatalf("Forecast = %v, %v", one, err)
	}
	_, err = c.Forecast(ctx, "dc9", "")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound || !strings.Contains(se.Message, "dc9") {
		t.Errorf("unknown locality: err = %v, want a 404 naming it", err)
	}
	series, err := c.Series(ctx)
	if err != nil || len(series) != 2 {
		t.Errorf("Series = %v, %v", series, err)
	}
	pol, err := c.Policies(ctx)
	if err != nil || pol == nil || len(pol) != 0 {
		t.Errorf("Policies = %#v, %v; want an empty, non-nil list", pol, err)
	}
}

func TestTokens(t *testing.T) {
	srv, c := newTestServer(t, Options{Tokens: []string{"s3cret"}})
	ctx := context.Background()
	if _, err := c.Health(ctx); err != nil {
		t.Errorf("health needs no token: %v", err)
	}
	_, err := c.Status(ctx)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || se.Message != "permission denied: "+DeniedNoToken {
		t.Errorf("no token: err = %v, want 403 saying no token was sent", err)
	}
	c.Token = "wrong"
	if _, err := c.Status(ctx); !errors.As(err, &se) || se.Code != http.StatusForbidden || se.Message != "permission denied: "+DeniedUnknownToken {
		t.Errorf("bad token: err = %v, want 403 saying the token is not one of the agent's", err)
	}
	if strings.Contains(se.Message, "wrong") {
		t.Errorf("the 403 echoes the token sent: %s", se.Message)
	}
	c.Token = "s3cret"
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("good token: %v", err)
	}
	// The scheme in any case, the token its first word (as Nomad reads
	// it); another scheme carries no token.
	for header, want := range map[string]int{"Bearer s3cret": 200, "bearer s3cret": 200, "BEARER  s3cret ": 200,
		"Bearer s3cret extra": 200, "Basic s3cret": 403, "Bearers3cret": 403} {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/status", nil)
		req.Header.Set("Authorization", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Authorization: %q: %d, want %d", header, resp.StatusCode, want)
		}
	}
}

// TestReady: /v1/ready answers 200 while Options.Ready passes and 503 with
// its reason otherwise; like /v1/health it needs no token.
func TestReady(t *testing.T) {
	var why atomic.Pointer[error]
	_, c := newTestServer(t, Options{Tokens: []string{"s3cret"}, Ready: func(context.Context) error {
		if p := why.Load(); p != nil {
			return *p
		}
		return nil
	}})
	ctx := context.Background()
	if h, err := c.Ready(ctx); err != nil || h.Status != "ok" || h.Node != "n1" {
		t.Errorf("ready: %+v, %v; want ok without a token", h, err)
	}
	err := errors.New("not ready: catching up with the leader")
	why.Store(&err)
	_, got := c.Ready(ctx)
	var se *StatusError
	if !errors.As(got, &se) || se.Code != http.StatusServiceUnavailable || !strings.Contains(got.Error(), "catching up with the leader") {
		t.Errorf("not ready: %v; want 503 with the reason", got)
	}
	if _, err := c.Health(ctx); err != nil {
		t.Errorf("health while not ready: %v; want ok (the process serves)", err)
	}
}

func TestMetricsExportForecasts(t *testing.T) {
	srv, _ := newTestServer(t, Options{})
	resp, err := http.Get(srv.URL + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	text := string(b)
	for _, want := range []string{
		`foreshape_forecast{horizon="5m",locality="dc1/web",metric="cpu",policy="web",quantile="0.9"} 61`,
		`foreshape_forecast{horizon="1h",locality="dc1/web",metric="cpu",policy="web",quantile="mean"} 62`,
		`foreshape_hotspot_probability{locality="dc1/web",metric="cpu",policy="web"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s\n%s", want, text)
		}
	}
}

// With telemetry.prometheus_metrics = false (Options.NoMetrics) a
// server serves no /v1/metrics: a 404, as docs/api.md says.
func TestMetricsOff(t *testing.T) {
	srv, _ := newTestServer(t, Options{NoMetrics: true})
	resp, err := http.Get(srv.URL + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var e Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || e.Error != "no such endpoint: GET /v1/metrics" {
		t.Errorf("GET /v1/metrics with metrics off: %d %q; want 404, no such endpoint", resp.StatusCode, e.Error)
	}
}

func TestUnknownEndpoint(t *testing.T) {
	srv, _ := newTestServer(t, Options{})
	resp, err := http.Get(srv.URL + "/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status = %d, want 404", resp.StatusCode)
	}
	// A path the API has, asked with a method it does not answer there,
	// is a 405 that says which methods it answers.
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "/v1/status", "GET, HEAD"},
		{http.MethodDelete, "/v1/queue", "GET, HEAD, POST"},
		// Not the request "resume" or "pause" (request IDs are mr-N).
		{http.MethodGet, "/v1/queue/resume", "POST"},
		{http.MethodDelete, "/v1/queue/pause", "POST"},
		{http.MethodPut, "/v1/queue/resume", "POST"},
		{http.MethodGet, "/v1/queue/mr-1", ""}, // GET /v1/queue/{id}
		{http.MethodHead, "/v1/status", ""},    // a GET endpoint answers HEAD
		{http.MethodPost, "/v1/health", "GET, HEAD"},
		{http.MethodPost, "/v1/operator/snapshot", "GET, HEAD, PUT"},
		// PATCH sets a request's priority: a 405 there names it too.
		{http.MethodPut, "/v1/queue/mr-1", "GET, HEAD, DELETE, PATCH"},
		{http.MethodPost, "/v1/queue/mr-1", "GET, HEAD, DELETE, PATCH"},
		{http.MethodPatch, "/v1/queue", "GET, HEAD, POST"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if tc.allow == "" {
			if resp.StatusCode == http.StatusMethodNotAllowed {
				t.Errorf("%s %s: 405, want the request endpoint's answer", tc.method, tc.path)
			}
			continue
		}
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow || !strings.Contains(e.Error, tc.allow) {
			t.Errorf("%s %s: %d Allow %q %q, want 405 allowing %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), e.Error, tc.allow)
		}
	}
}

// TestUncleanPathRedirects: a path with an empty, "." or ".." part is
// redirected (307, the method kept) to its clean form, as Go's ServeMux
// does, but for a forecast's LOCALITY (TestMalformedLocalityInAPath).
func TestUncleanPathRedirects(t *testing.T) {
	srv, _ := newTestServer(t, Options{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]string{"/v1//status": "/v1/status", "/v1/./status": "/v1/status", "/v1/queue//mr-1": "/v1/queue/mr-1", "/v1/queue/../status": "/v1/status"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.URL.Opaque = "//" + req.URL.Host + path // sent as written
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %d to %q, want 307 to %s", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

func TestUIMount(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "dashboard "+r.URL.Path) })
	srv, _ := newTestServer(t, Options{UI: ui, Tokens: []string{"t"}})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		path, want string
		code       int
	}{
		{"/ui/queue", "dashboard /ui/queue", http.StatusOK}, // the dashboard applies the token rules itself
		{"/", "/ui/", http.StatusFound},
		{"/ui", "/ui/", http.StatusMovedPermanently},
		{"/v1/status", "", http.StatusForbidden},
		{"/elsewhere", "", http.StatusNotFound},
	} {
		resp, err := noRedirect.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("GET %s: %d, want %d", c.path, resp.StatusCode, c.code)
		}
		if got := resp.Header.Get("Location"); c.code/100 == 3 && got != c.want {
			t.Errorf("GET %s redirects to %q, want %q", c.path, got, c.want)
		}
		if c.code == http.StatusOK && string(body) != c.want {
			t.Errorf("GET %s: %q, want %q", c.path, body, c.want)
		}
	}
	srv2, _ := newTestServer(t, Options{})
	resp, err := noRedirect.Get(srv2.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("without a dashboard GET /ui/: %d, want 404", resp.StatusCode)
	}
}

// TestErrorMessage: the sentinel's word that chose the status is not
// repeated after the message, once or twice (a follower relaying the
// leader's answer wraps it again); a message that is only the word keeps
// it.
func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("request mr-9 is done; only a request that has not started can be cancelled: %w", ErrConflict), "request mr-9 is done; only a request that has not started can be cancelled"},
		{fmt.Errorf("%s: %w", fmt.Errorf("migration request %q: %w", "mr-4", ErrNotFound).Error(), ErrNotFound), `migration request "mr-4"`},
		{fmt.Errorf("this agent does not lead: %w", ErrUnavailable), "this agent does not lead"},
		{ErrNotFound, "not found"},
		{errors.New("disk full"), "disk full"},
	} {
		if got := ErrorMessage(tc.err); got != tc.want {
			t.Errorf("ErrorMessage(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// A query parameter given twice is a 400 naming it (a filter read its
// first value alone: ?kind=submit&kind=hold listed submits only), but the
// queue's state, which takes several.
func TestRepeatedParameterRefused(t *testing.T) {
	srv, _ := newTestServer(t, Options{})
	for path, want := range map[string]string{
		"/v1/decisions?kind=submit&kind=hold":               "kind: given 2 times",
		"/v1/reservations?state=held&state=released":        "state: given 2 times",
		"/v1/forecasts?metric=cpu&metric=memory":            "metric: given 2 times",
		"/v1/queue?state=pending&state=running":             "",
		"/v1/queue?locality=dc1&locality=dc2&state=pending": "locality: given 2 times",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var e Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		switch {
		case want == "" && resp.StatusCode == http.StatusBadRequest:
			t.Errorf("%s: 400 %q, want the states taken", path, e.Error)
		case want != "" && (resp.StatusCode != http.StatusBadRequest || e.Error != want+"; it takes one value"):
			t.Errorf("%s: %d %q, want 400 saying %q", path, resp.StatusCode, e.Error, want)
		}
	}
}

// The log names who sent a request: its connection, and on a forwarded
// one the address the forwarding server had it from.
func TestCaller(t *testing.T) {
	r := httptest.NewRequest("POST", "/v1/queue/pause", nil)
	r.RemoteAddr = "10.0.0.2:4000"
	if got := caller(r); got != "10.0.0.2:4000" {
		t.Errorf("caller = %q", got)
	}
	r.Header.Set("X-Forwarded-For", "192.0.2.7")
	if got := caller(r); got != "192.0.2.7 via 10.0.0.2:4000" {
		t.Errorf("forwarded caller = %q", got)
	}
}
