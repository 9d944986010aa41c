package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultAddress is where an agent serves its API unless configured otherwise.
const DefaultAddress = "http://127.0.0.1:7575"

// DefaultTimeout bounds each call of a Client whose HTTP is nil. A
// blocking query gets its wait on top of it, or of HTTP's own Timeout.
const DefaultTimeout = 30 * time.Second

// KnownLeaderHeader is set on a read (the queue, a request, reservations,
// decisions) a server answers from its own copy of the replicated state:
// "true", or "false" while it knows no leader, when that copy may be
// behind. Nomad's X-Nomad-KnownLeader says the same.
const KnownLeaderHeader = "X-Foreshape-Known-Leader"

// QueryMeta is what the headers of a read's answer say about it.
type QueryMeta struct {
	// NoLeader is set when the server answered from its own copy of the
	// state knowing no leader (KnownLeaderHeader "false"): the answer may
	// be out of date. An answer without the header leaves it false.
	NoLeader bool
}

func queryMeta(h http.Header) QueryMeta {
	return QueryMeta{NoLeader: h.Get(KnownLeaderHeader) == "false"}
}

// Client calls an agent's HTTP API.
type Client struct {
	// Address is the agent's base URL; "127.0.0.1:7575" gets http://.
	Address string
	// Token is sent as X-Foreshape-Token when not empty.
	Token string
	// HTTP is the client used; nil means one with DefaultTimeout. A
	// blocking query (Queue with a WaitIndex) is sent with a copy whose
	// Timeout, if it has one, is lengthened by the query's wait.
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
	_, err := c.do(ctx, http.MethodGet, path, q, nil, out)
	return err
}

// notFromAnAgent describes an error answer without a foreshape error in
// it (another server at the address, a proxy's page): which request, that
// the answer is not an agent's, and the start of what it said.
func notFromAnAgent(method, path, base string, body []byte) string {
	msg := fmt.Sprintf("%s %s: not a foreshape agent's answer (is %s the agent's HTTP API?)", method, path, base)
	text := strings.TrimSpace(string(body))
	if text == "" {
		return msg
	}
	if r := []rune(text); len(r) > 200 {
		text = string(r[:200]) + "…"
	}
	return msg + ": " + text
}

// do sends one request with an optional JSON body and decodes a 2xx
// answer into out (when not nil). It returns the answer's headers.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) (http.Header, error) {
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
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("api: encode %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("X-Foreshape-Token", c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		// An agent that sent its headers and then stalled, or a
		// connection lost midway.
		return nil, answerError(req, "reading the answer", err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = notFromAnAgent(method, path, base, b)
		}
		return resp.Header, &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.Header, answerError(req, "decoding the answer", err)
		}
	}
	return resp.Header, nil
}

// answerError is err, met reading or decoding req's answer, named as the
// transport names a request that got no answer: by its method and URL, so
// that it says which agent failed.
func answerError(req *http.Request, what string, err error) error {
	op := req.Method[:1] + strings.ToLower(req.Method[1:])
	return fmt.Errorf("api: %w", &url.Error{Op: op, URL: req.URL.Redacted(), Err: fmt.Errorf("%s: %w", what, err)})
}

// Health calls GET /v1/health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.get(ctx, "/v1/health", nil, &h)
}

// Ready calls GET /v1/ready. While the agent is not ready it answers 503:
// a *StatusError whose message is the reason.
func (c *Client) Ready(ctx context.Context) (Health, error) {
	var h Health
	return h, c.get(ctx, "/v1/ready", nil, &h)
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

// ForecastsWithHistory calls GET /v1/forecasts?history=true: the
// forecasts with the recent past each starts from.
func (c *Client) ForecastsWithHistory(ctx context.Context) ([]Forecast, error) {
	var f []Forecast
	return f, c.get(ctx, "/v1/forecasts", url.Values{"history": {"true"}}, &f)
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
	parts := strings.Split(locality, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	var f []Forecast
	return f, c.get(ctx, "/v1/forecast/"+strings.Join(parts, "/"), q, &f)
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

// QueueOptions select requests and make Queue a blocking query.
type QueueOptions struct {
	// States keeps requests in these states; none keeps all.
	States []string
	// Locality keeps requests whose source or target it is.
	Locality string
	// WaitIndex, when not zero, makes the agent answer only once the
	// queue's index exceeds it or WaitTime has passed (default 5m).
	WaitIndex uint64
	WaitTime  time.Duration
}

// Queue calls GET /v1/queue. The answer's Index is the act state's index,
// to pass as the next call's WaitIndex.
func (c *Client) Queue(ctx context.Context, o *QueueOptions) (Queue, error) {
	q, _, err := c.QueueWithMeta(ctx, o)
	return q, err
}

// QueueWithMeta is Queue with what the answer's headers say of it.
func (c *Client) QueueWithMeta(ctx context.Context, o *QueueOptions) (Queue, QueryMeta, error) {
	q := url.Values{}
	if o != nil {
		for _, s := range o.States {
			q.Add("state", s)
		}
		if o.Locality != "" {
			q.Set("locality", o.Locality)
		}
		if o.WaitIndex > 0 {
			q.Set("index", strconv.FormatUint(o.WaitIndex, 10))
			if o.WaitTime > 0 {
				q.Set("wait", o.WaitTime.String())
			}
		}
	}
	cl := c
	if o != nil && o.WaitIndex > 0 {
		wait := DefaultWait
		if o.WaitTime > 0 {
			wait = min(o.WaitTime, MaxWait)
		}
		cl = c.forWait(wait)
	}
	var out Queue
	h, err := cl.do(ctx, http.MethodGet, "/v1/queue", q, nil, &out)
	if err != nil {
		return out, QueryMeta{}, err
	}
	out.Index, _ = strconv.ParseUint(h.Get(IndexHeader), 10, 64)
	return out, queryMeta(h), nil
}

// forWait returns c with an HTTP client whose Timeout leaves room for an
// answer the agent may hold back for wait (a blocking query): HTTP's
// Timeout, or DefaultTimeout when HTTP is nil, plus wait. Whatever
// carries the call (the CLI's TLS client has a Timeout of its own), a
// quiet wait must not be cut off by the bound meant for a plain call.
func (c *Client) forWait(wait time.Duration) *Client {
	hc := http.Client{Timeout: DefaultTimeout}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	if hc.Timeout > 0 {
		hc.Timeout += wait
	}
	cc := *c
	cc.HTTP = &hc
	return &cc
}

// Request calls GET /v1/queue/ID.
func (c *Client) Request(ctx context.Context, id string) (MigrationRequest, error) {
	mr, _, err := c.RequestWithMeta(ctx, id)
	return mr, err
}

// RequestWithMeta is Request with what the answer's headers say of it.
func (c *Client) RequestWithMeta(ctx context.Context, id string) (MigrationRequest, QueryMeta, error) {
	var mr MigrationRequest
	h, err := c.do(ctx, http.MethodGet, "/v1/queue/"+url.PathEscape(id), nil, nil, &mr)
	if err != nil {
		return mr, QueryMeta{}, err
	}
	return mr, queryMeta(h), nil
}

// Submit calls POST /v1/queue and returns the new request's id.
func (c *Client) Submit(ctx context.Context, s Submission) (string, error) {
	var out Submitted
	_, err := c.do(ctx, http.MethodPost, "/v1/queue", nil, s, &out)
	return out.ID, err
}

// Cancel calls DELETE /v1/queue/ID and returns the cancelled request.
func (c *Client) Cancel(ctx context.Context, id string) (MigrationRequest, error) {
	var mr MigrationRequest
	_, err := c.do(ctx, http.MethodDelete, "/v1/queue/"+url.PathEscape(id), nil, nil, &mr)
	return mr, err
}

// SetPriority calls PATCH /v1/queue/ID and returns the request with its
// new priority.
func (c *Client) SetPriority(ctx context.Context, id string, priority int) (MigrationRequest, error) {
	var mr MigrationRequest
	_, err := c.do(ctx, http.MethodPatch, "/v1/queue/"+url.PathEscape(id), nil, PriorityChange{Priority: priority}, &mr)
	return mr, err
}

// Pause calls POST /v1/queue/pause (paused true) or /v1/queue/resume and
// returns the queue afterwards.
func (c *Client) Pause(ctx context.Context, paused bool) (Queue, error) {
	path := "/v1/queue/resume"
	if paused {
		path = "/v1/queue/pause"
	}
	var out Queue
	h, err := c.do(ctx, http.MethodPost, path, nil, nil, &out)
	if err == nil {
		out.Index, _ = strconv.ParseUint(h.Get(IndexHeader), 10, 64)
	}
	return out, err
}

// ReservationOptions select reservations; empty fields match all.
type ReservationOptions struct {
	Policy, Locality, State, Request string
}

// Reservations calls GET /v1/reservations.
func (c *Client) Reservations(ctx context.Context, o *ReservationOptions) ([]Reservation, error) {
	rs, _, err := c.ReservationsWithMeta(ctx, o)
	return rs, err
}

// ReservationsWithMeta is Reservations with what the answer's headers say
// of it.
func (c *Client) ReservationsWithMeta(ctx context.Context, o *ReservationOptions) ([]Reservation, QueryMeta, error) {
	q := url.Values{}
	if o != nil {
		for k, v := range map[string]string{"policy": o.Policy, "locality": o.Locality, "state": o.State, "request": o.Request} {
			if v != "" {
				q.Set(k, v)
			}
		}
	}
	var out Reservations
	h, err := c.do(ctx, http.MethodGet, "/v1/reservations", q, nil, &out)
	if err != nil {
		return nil, QueryMeta{}, err
	}
	return out.Reservations, queryMeta(h), nil
}

// Decisions calls GET /v1/decisions with f's filters.
func (c *Client) Decisions(ctx context.Context, f DecisionFilter) ([]Decision, error) {
	ds, _, err := c.DecisionsWithMeta(ctx, f)
	return ds, err
}

// DecisionsWithMeta is Decisions with what the answer's headers say of
// it.
func (c *Client) DecisionsWithMeta(ctx context.Context, f DecisionFilter) ([]Decision, QueryMeta, error) {
	q := url.Values{}
	for k, v := range map[string]string{"policy": f.Policy, "locality": f.Locality, "kind": f.Kind, "request": f.Request} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		// To the nanosecond: cut to the second, it let in decisions
		// up to a second before Since.
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out Decisions
	h, err := c.do(ctx, http.MethodGet, "/v1/decisions", q, nil, &out)
	if err != nil {
		return nil, QueryMeta{}, err
	}
	return out.Decisions, queryMeta(h), nil
}
