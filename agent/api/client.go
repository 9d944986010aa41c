package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultAddress is where an agent serves its API unless configured otherwise.
const DefaultAddress = "http://127.0.0.1:7575"

// Client calls an agent's HTTP API.
type Client struct {
	// Address is the agent's base URL; "127.0.0.1:7575" gets http://.
	Address string
	// Token is sent as X-Foreshape-Token when not empty.
	Token string
	// HTTP is the client used; nil means one with a 30 s timeout.
	HTTP *http.Client
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("agent answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	base := c.Address
	if base == "" {
		base = DefaultAddress
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u := strings.TrimRight(base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("X-Foreshape-Token", c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("api: read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("api: decode %s: %w", path, err)
	}
	return nil
}

// Health calls GET /v1/health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.get(ctx, "/v1/health", nil, &h)
}

// Status calls GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.get(ctx, "/v1/status", nil, &s)
}

// Policies calls GET /v1/policies.
func (c *Client) Policies(ctx context.Context) ([]Policy, error) {
	var p []Policy
	return p, c.get(ctx, "/v1/policies", nil, &p)
}

// Series calls GET /v1/series.
func (c *Client) Series(ctx context.Context) ([]Series, error) {
	var s []Series
	return s, c.get(ctx, "/v1/series", nil, &s)
}

// Forecasts calls GET /v1/forecasts.
func (c *Client) Forecasts(ctx context.Context) ([]Forecast, error) {
	var f []Forecast
	return f, c.get(ctx, "/v1/forecasts", nil, &f)
}

// Forecast calls GET /v1/forecast/LOCALITY, optionally for one metric.
func (c *Client) Forecast(ctx context.Context, locality, metric string) ([]Forecast, error) {
	q := url.Values{}
	if metric != "" {
		q.Set("metric", metric)
	}
	var f []Forecast
	return f, c.get(ctx, "/v1/forecast/"+locality, q, &f)
}

// Hotspots calls GET /v1/hotspots.
func (c *Client) Hotspots(ctx context.Context) ([]Hotspot, error) {
	var h []Hotspot
	return h, c.get(ctx, "/v1/hotspots", nil, &h)
}

// Anomalies calls GET /v1/anomalies.
func (c *Client) Anomalies(ctx context.Context) ([]Anomaly, error) {
	var a []Anomaly
	return a, c.get(ctx, "/v1/anomalies", nil, &a)
}
