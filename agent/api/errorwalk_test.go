package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
)

// allFailing is an act backend whose every call fails with err.
type allFailing struct{ err error }

func (f allFailing) Queue(context.Context) (api.Queue, error) { return api.Queue{}, f.err }
func (f allFailing) Request(context.Context, string) (api.MigrationRequest, error) {
	return api.MigrationRequest{}, f.err
}
func (f allFailing) Submit(context.Context, api.Submission) (string, error)  { return "", f.err }
func (f allFailing) Cancel(context.Context, string) error                    { return f.err }
func (f allFailing) SetPaused(context.Context, bool) error                   { return f.err }
func (f allFailing) SetPriority(context.Context, string, int) error          { return f.err }
func (f allFailing) Reservations(context.Context) ([]api.Reservation, error) { return nil, f.err }
func (f allFailing) Decisions(context.Context, api.DecisionFilter) ([]api.Decision, error) {
	return nil, f.err
}
func (f allFailing) WaitIndex(context.Context, uint64) (uint64, error) { return 0, f.err }

// nanBackend answers every read with a value JSON cannot carry.
type nanBackend struct{}

func (nanBackend) Status(context.Context) api.Status {
	return api.Status{Node: "n1", LastCycle: &api.Cycle{}, Series: 1}
}
func (nanBackend) Policies(context.Context) []api.Policy {
	return []api.Policy{{Name: "web", Locality: "dc1", Quantile: math.NaN()}}
}
func (nanBackend) Series(context.Context) []api.Series {
	return []api.Series{{Series: "dc1:cpu", LastValue: math.Inf(1)}}
}
func (nanBackend) Forecasts(context.Context) []api.Forecast {
	return []api.Forecast{{Policy: "web", Locality: "dc1", Metric: "cpu", Status: api.ForecastFailed, AgeSeconds: math.NaN()}}
}
func (nanBackend) Hotspots(context.Context) []api.Hotspot {
	return []api.Hotspot{{Policy: "web", Locality: "dc1", Probability: math.NaN()}}
}
func (nanBackend) Anomalies(context.Context) []api.Anomaly {
	return []api.Anomaly{{Series: "dc1:cpu", Score: math.Inf(-1)}}
}

// twiceBackend answers the same ready forecast twice, which the forecast
// gauges of /v1/metrics cannot both carry: gathering them fails.
type twiceBackend struct{ nopBackend }

func (twiceBackend) Forecasts(context.Context) []api.Forecast {
	origin := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	f := api.Forecast{Policy: "web", Locality: "dc1", Metric: "cpu", Status: api.ForecastReady, Origin: origin,
		Times: []time.Time{origin.Add(5 * time.Minute)}, Mean: []float64{50}}
	return []api.Forecast{f, f}
}

// TestErrorsOfEveryEndpointAreJSON walks every endpoint the server routes with bad
// input (a query parameter it does not take, each of its parameters given
// twice and with a value it cannot read, a method it does not answer, no
// token where ACLs are on, a path value nothing matches, a bad or
// oversized body) over backends that fail in every way the API answers
// (each sentinel error, no act or operator backend, an answer JSON cannot
// carry, metrics that cannot be gathered, which promhttp answered in plain
// text): every answer that is not 2xx is JSON, {"error": "..."} with a
// message, as docs/api.md says, and every other one JSON (an answer the
// encoder refused was an empty 200); and every endpoint answered some
// error.
// (TestEveryErrorIsJSON checks one request of each kind by its status.)
func TestErrorsOfEveryEndpointAreJSON(t *testing.T) {
	type setup struct {
		name string
		b    api.Backend
		opts api.Options
	}
	setups := []setup{
		{"healthy", nopBackend{}, api.Options{Act: apitest.New(), Operator: failingOperator{err: fmt.Errorf("server x: %w", api.ErrNotFound)}}},
		{"no act or operator backend", nopBackend{}, api.Options{}},
		{"with ACLs", nopBackend{}, api.Options{Tokens: []string{"secret"}, Act: apitest.New()}},
		{"not ready", nopBackend{}, api.Options{Ready: func(context.Context) error { return errors.New("no leader") }}},
		{"answers JSON cannot carry", nanBackend{}, api.Options{Act: apitest.New()}},
		{"metrics that cannot be gathered", twiceBackend{}, api.Options{}},
	}
	for _, err := range []error{
		errors.New("raft: boom"), &api.InvalidError{Field: "id", Reason: "bad"}, fmt.Errorf("x: %w", api.ErrNotFound),
		&api.ConflictError{Existing: "mr-1"}, fmt.Errorf("full: %w", api.ErrQueueFull), fmt.Errorf("no leader: %w", api.ErrUnavailable),
		fmt.Errorf("nodes: %w", api.ErrNomadRefused), context.DeadlineExceeded,
	} {
		setups = append(setups, setup{"failing with " + err.Error(), nopBackend{},
			api.Options{Act: allFailing{err}, Operator: failingOperator{err}}})
	}
	erred := map[string]bool{} // patterns that answered an error
	codes := map[int]bool{}    // the error statuses seen
	var patterns map[string][]string
	for _, st := range setups {
		s, err := api.NewServer(st.b, st.opts)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s)
		patterns = s.RoutedParams()
		patterns["GET /v1/health"], patterns["GET /v1/ready"], patterns["GET /v1/metrics"] = nil, nil, nil
		for pattern, params := range patterns {
			method, path, _ := strings.Cut(pattern, " ")
			path = strings.NewReplacer("{id}", "mr-nosuch", "{locality...}", "dc9").Replace(path)
			type req struct{ method, target, body string }
			reqs := []req{
				{method, path, ""},
				{method, path + "?bogus=1", ""},
				{http.MethodPatch, path, ""},
				{method, path + "/..%2F", ""},
			}
			for _, p := range params {
				for _, v := range []string{"", "-1", "x", "@@", "dc1//web", "1e400"} {
					reqs = append(reqs, req{method, path + "?" + p + "=" + v, ""})
				}
				reqs = append(reqs, req{method, path + "?" + p + "=1&" + p + "=2", ""})
			}
			if method == http.MethodPost {
				for _, body := range []string{"", "{", "[]", `{"node":"a","node":"b"}`, `{"Node":"a","target":"dc2"}`,
					`{"node":"a","target":"dc2","priority":500}`, `{"node":"a"}{}`, strings.Repeat(" ", 65<<10) + "{}"} {
					reqs = append(reqs, req{method, path, body})
				}
			}
			for _, rq := range reqs {
				r, err := http.NewRequest(rq.method, srv.URL+rq.target, strings.NewReader(rq.body))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 400 {
					// A 2xx answer is JSON too (but a 204's and Prometheus
					// text): one the encoder refused was an empty 200.
					if resp.StatusCode != http.StatusNoContent && pattern != "GET /v1/metrics" && !json.Valid(body) {
						t.Errorf("%s: %s %s: %d %q, want JSON", st.name, rq.method, rq.target, resp.StatusCode, body)
					}
					continue
				}
				erred[pattern], codes[resp.StatusCode] = true, true
				var e map[string]any
				var msg string
				dec := json.NewDecoder(bytes.NewReader(body))
				if err := dec.Decode(&e); err == nil {
					msg, _ = e["error"].(string)
				}
				if resp.Header.Get("Content-Type") != "application/json" || msg == "" || dec.More() {
					t.Errorf("%s: %s %s: %d %s %q, want JSON with an error", st.name, rq.method, rq.target, resp.StatusCode,
						resp.Header.Get("Content-Type"), body)
				}
			}
		}
		srv.Close()
	}
	for pattern := range patterns {
		if !erred[pattern] {
			t.Errorf("%s answered no error", pattern)
		}
	}
	for _, c := range []int{400, 403, 404, 405, 409, 413, 429, 500, 502, 503} {
		if !codes[c] {
			t.Errorf("no answer was a %d: the walk misses it", c)
		}
	}
	t.Logf("%d endpoints, error statuses %v", len(patterns), slices.Sorted(func(yield func(int) bool) {
		for c := range codes {
			if !yield(c) {
				return
			}
		}
	}))
}
