package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
)

// nopBackend answers the forecast endpoints with nothing.
type nopBackend struct{}

func (nopBackend) Status(context.Context) api.Status        { return api.Status{Node: "n1"} }
func (nopBackend) Policies(context.Context) []api.Policy    { return nil }
func (nopBackend) Series(context.Context) []api.Series      { return nil }
func (nopBackend) Forecasts(context.Context) []api.Forecast { return nil }
func (nopBackend) Hotspots(context.Context) []api.Hotspot   { return nil }
func (nopBackend) Anomalies(context.Context) []api.Anomaly  { return nil }

func serveAct(t *testing.T, act api.ActBackend, opts api.Options) (string, *api.Client) {
	t.Helper()
	opts.Act = act
	s, err := api.NewServer(nopBackend{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL, &api.Client{Address: srv.URL}
}

func statusCode(err error) int {
	var se *api.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// keys returns the sorted keys of a JSON object.
func keys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %s", raw)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// send makes a request of method to url with body and, when not empty,
// token, and returns the answer's status and body.
func send(t *testing.T, method, url, body, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("X-Foreshape-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getJSON(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// The JSON shapes are fixed: scripts rely on exactly these keys.
func TestActJSONShapes(t *testing.T) {
	act := apitest.New()
	addr, c := serveAct(t, act, api.Options{})
	ctx := context.Background()
	if _, err := c.Submit(ctx, api.Submission{Allocation: "a1", Target: "dc2"}); err != nil {
		t.Fatal(err)
	}
	act.AddReservation(api.Reservation{ID: "res-1", Request: "mr-1", Policy: "web", Locality: "dc2", CPU: 500, Memory: 256,
		From: act.Start, Until: act.Start.Add(time.Hour), Job: "foreshape-reserve-mr-1", State: api.ReservationHeld})
	act.AddDecision(api.Decision{Time: act.Start, Policy: "web", Kind: api.DecisionReserve, Locality: "dc2", Request: "mr-1", Reason: "r"})

	for _, tc := range []struct {
		path, list string
		top, item  []string
	}{
		{"/v1/queue", "requests", []string{"paused", "requests"},
			[]string{"created", "estimated_duration_s", "finished", "id", "priority", "reason", "resource", "score", "source", "started", "state", "target"}},
		{"/v1/reservations", "reservations", []string{"reservations"},
			[]string{"cpu", "from", "id", "iops", "job", "locality", "memory", "policy", "request", "state", "until"}},
		{"/v1/decisions", "decisions", []string{"decisions"},
			[]string{"kind", "locality", "policy", "reason", "request", "time"}},
	} {
		code, _, body := getJSON(t, addr+tc.path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.path, code, body)
		}
		if got := keys(t, body); fmt.Sprint(got) != fmt.Sprint(tc.top) {
			t.Errorf("%s keys = %v, want %v", tc.path, got, tc.top)
		}
		var top map[string]json.RawMessage
		_ = json.Unmarshal(body, &top)
		var items []json.RawMessage
		if err := json.Unmarshal(top[tc.list], &items); err != nil || len(items) != 1 {
			t.Fatalf("%s %s = %s", tc.path, tc.list, top[tc.list])
		}
		if got := keys(t, items[0]); fmt.Sprint(got) != fmt.Sprint(tc.item) {
			t.Errorf("%s item keys = %v, want %v", tc.path, got, tc.item)
		}
	}
	// A request that has not started shows null times, not year one.
	_, _, body := getJSON(t, addr+"/v1/queue/mr-1")
	if !strings.Contains(string(body), `"started": null`) || !strings.Contains(string(body), `"finished": null`) {
		t.Errorf("unstarted request: %s", body)
	}
	// Empty lists are [] so scripts can iterate them.
	addr2, _ := serveAct(t, apitest.New(), api.Options{})
	for _, path := range []string{"/v1/queue", "/v1/reservations", "/v1/decisions"} {
		if _, _, body := getJSON(t, addr2+path); !strings.Contains(string(body), "[]") {
			t.Errorf("%s on an empty state = %s, want an empty list", path, body)
		}
	}
}

func TestQueueSubmitShowCancel(t *testing.T) {
	act := apitest.New()
	addr, c := serveAct(t, act, api.Options{})
	ctx := context.Background()

	resp, err := http.Post(addr+"/v1/queue", "application/json", strings.NewReader(`{"job":"web","group":"frontend","target":"dc3","priority":70,"reason":"rack maintenance"}`))
	if err != nil {
		t.Fatal(err)
	}
	var sub api.Submitted
	_ = json.NewDecoder(resp.Body).Decode(&sub)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || sub.ID == "" || resp.Header.Get("Location") != "/v1/queue/"+sub.ID ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("submit: %d %+v location %q", resp.StatusCode, sub, resp.Header.Get("Location"))
	}
	mr, err := c.Request(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := api.MigrationRequest{ID: sub.ID, Resource: "job/web/frontend", Source: "dc1", Target: "dc3", State: api.StatePending,
		Priority: 70, Reason: "rack maintenance", EstimatedDurationS: 60, Created: act.Start}
	if fmt.Sprint(mr) != fmt.Sprint(want) {
		t.Errorf("request = %+v\nwant      %+v", mr, want)
	}

	id2, err := c.Submit(ctx, api.Submission{Node: "n1", Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.Queue(ctx, nil)
	if err != nil || len(q.Requests) != 2 || q.Paused || q.Index == 0 {
		t.Fatalf("queue = %+v, %v", q, err)
	}
	q, err = c.Queue(ctx, &api.QueueOptions{Locality: "dc3"})
	if err != nil || len(q.Requests) != 1 || q.Requests[0].ID != sub.ID {
		t.Errorf("queue of dc3 = %+v, %v", q.Requests, err)
	}

	got, err := c.Cancel(ctx, id2)
	if err != nil || got.State != api.StateCancelled {
		t.Fatalf("cancel = %+v, %v", got, err)
	}
	q, _ = c.Queue(ctx, &api.QueueOptions{States: []string{api.StateCancelled}})
	if len(q.Requests) != 1 || q.Requests[0].ID != id2 {
		t.Errorf("cancelled requests = %+v", q.Requests)
	}
	if _, err := c.Cancel(ctx, id2); statusCode(err) != http.StatusConflict {
		t.Errorf("cancel twice: %v, want 409", err)
	}
	act.Update(sub.ID, func(r *api.MigrationRequest) { r.State = api.StateRunning })
	if _, err := c.Cancel(ctx, sub.ID); statusCode(err) != http.StatusConflict || !strings.HasSuffix(err.Error(), "only a request that has not started can be cancelled") {
		t.Errorf("cancel a running move: %v, want 409 ending with why (not the sentinel's ': conflict')", err)
	}
	if _, err := c.Cancel(ctx, "mr-404"); statusCode(err) != http.StatusNotFound {
		t.Errorf("cancel unknown: %v, want 404", err)
	}
	if _, err := c.Request(ctx, "mr-404"); statusCode(err) != http.StatusNotFound || !strings.Contains(err.Error(), "mr-404") {
		t.Errorf("show unknown: %v, want a 404 naming it", err)
	}
	if _, err := c.Queue(ctx, &api.QueueOptions{States: []string{"lost"}}); statusCode(err) != http.StatusBadRequest {
		t.Errorf("unknown state filter: %v, want 400", err)
	}
	// The node's request was cancelled: it may be queued again.
	if _, err := c.Submit(ctx, api.Submission{Node: "n1", Target: "dc2"}); err != nil {
		t.Errorf("resubmit after cancel: %v", err)
	}
}

// TestQueueSetPriority: PATCH /v1/queue/{id} with {"priority": N} sets a
// queued request's priority and answers the request; it refuses a
// priority outside 1–100, a body that is not exactly that object, an
// unknown request (404) and one that runs (409); /v1/queue/pause is not a
// request to patch.
func TestQueueSetPriority(t *testing.T) {
	act := apitest.New()
	addr, c := serveAct(t, act, api.Options{})
	ctx := context.Background()
	id, err := c.Submit(ctx, api.Submission{Node: "n1", Target: "dc2", Priority: 40})
	if err != nil {
		t.Fatal(err)
	}
	mr, err := c.SetPriority(ctx, id, 90)
	if err != nil || mr.ID != id || mr.Priority != 90 {
		t.Fatalf("set priority: %+v, %v; want %s at 90", mr, err, id)
	}
	if got, _ := c.Request(ctx, id); got.Priority != 90 {
		t.Errorf("the request's priority after the change: %d, want 90", got.Priority)
	}
	for _, tc := range []struct {
		path, body string
		code       int
		says       string
	}{
		{"/v1/queue/" + id, `{"priority": 0}`, http.StatusBadRequest, "priority: 0 is outside 1–100"},
		{"/v1/queue/" + id, `{"priority": 101}`, http.StatusBadRequest, "priority: 101 is outside 1–100"},
		{"/v1/queue/" + id, `{"priority": "high"}`, http.StatusBadRequest, "not a priority change"},
		{"/v1/queue/" + id, `{"priority": 50, "reason": "x"}`, http.StatusBadRequest, "not a priority change"},
		{"/v1/queue/" + id, `{"Priority": 50, "priority": 60}`, http.StatusBadRequest, "not a priority change"},
		{"/v1/queue/" + id, `{"priority": 50} {"priority": 60}`, http.StatusBadRequest, "more than one JSON value"},
		{"/v1/queue/" + id, `{"priority": 50}` + strings.Repeat(" ", 4<<10), http.StatusRequestEntityTooLarge, "larger than 4 KiB"},
		{"/v1/queue/mr-404", `{"priority": 50}`, http.StatusNotFound, "mr-404"},
		{"/v1/queue/pause", `{"priority": 50}`, http.StatusMethodNotAllowed, "answers POST only"},
	} {
		if code, body := send(t, http.MethodPatch, addr+tc.path, tc.body, ""); code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("PATCH %s %s: %d %s; want %d saying %q", tc.path, tc.body, code, body, tc.code, tc.says)
		}
	}
	if got, _ := c.Request(ctx, id); got.Priority != 90 {
		t.Errorf("a refused change changed the priority to %d", got.Priority)
	}
	act.Update(id, func(r *api.MigrationRequest) { r.State = api.StateRunning })
	if _, err := c.SetPriority(ctx, id, 10); statusCode(err) != http.StatusConflict {
		t.Errorf("the priority of a running move: %v, want 409", err)
	}
}

func TestQueueSubmitRefusals(t *testing.T) {
	act := apitest.New()
	act.Max = 2
	addr, c := serveAct(t, act, api.Options{})
	ctx := context.Background()
	first, err := c.Submit(ctx, api.Submission{Allocation: "a1", Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"not json", `{"allocation":`, 400, "body"},
		{"unknown field", `{"alloc":"a1","target":"dc2"}`, 400, "unknown field"},
		{"two values", `{"allocation":"a2","target":"dc1"} {}`, 400, "more than one"},
		{"field in another case", `{"NODE":"n1","target":"dc1"}`, 400, `field "NODE": did you mean "node"?`},
		{"field twice", `{"node":"n1","node":"n2","target":"dc1"}`, 400, `field "node" given twice`},
		{"not an object", `["node"]`, 400, "cannot unmarshal array"},
		{"nothing to move", `{"target":"dc2"}`, 400, "allocation"},
		{"two resources", `{"allocation":"a2","node":"n1","target":"dc2"}`, 400, "only one"},
		{"job without group", `{"job":"web","target":"dc2"}`, 400, "group"},
		{"group without job", `{"group":"frontend","target":"dc2"}`, 400, "job"},
		{"no target", `{"allocation":"a2"}`, 400, "target"},
		{"priority", `{"allocation":"a2","target":"dc1","priority":101}`, 400, "priority"},
		{"unknown allocation", `{"allocation":"zz","target":"dc1"}`, 400, `allocation: no allocation "zz"`},
		{"unknown node", `{"node":"zz","target":"dc1"}`, 400, `node: no node "zz"`},
		{"unknown target", `{"allocation":"a2","target":"dc9"}`, 400, `target: no locality "dc9"`},
		{"target is source", `{"allocation":"a2","target":"dc2"}`, 400, "already is"},
		{"already queued", `{"allocation":"a1","target":"dc3"}`, 409, first},
		{"too large", `{"allocation":"a2","target":"dc1","reason":"` + strings.Repeat("x", 64<<10) + `"}`, 413, "larger than 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := c.Queue(ctx, nil)
			resp, err := http.Post(addr+"/v1/queue", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			var e api.Error
			_ = json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(e.Error, tc.want) {
				t.Errorf("%d %q, want %d mentioning %q", resp.StatusCode, e.Error, tc.code, tc.want)
			}
			after, _ := c.Queue(ctx, nil)
			if after.Index != before.Index || len(after.Requests) != len(before.Requests) {
				t.Errorf("a refused submission changed the queue")
			}
		})
	}
	if _, err := c.Submit(ctx, api.Submission{Allocation: "a2", Target: "dc1"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Submit(ctx, api.Submission{Node: "n1", Target: "dc3"})
	if statusCode(err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "bound is 2") {
		t.Errorf("full queue: %v, want 429", err)
	}
}

func TestQueuePauseResume(t *testing.T) {
	_, c := serveAct(t, apitest.New(), api.Options{})
	ctx := context.Background()
	q, err := c.Pause(ctx, true)
	if err != nil || !q.Paused {
		t.Fatalf("pause = %+v, %v", q, err)
	}
	if q, _ := c.Queue(ctx, nil); !q.Paused {
		t.Error("queue not paused after pause")
	}
	if q, err := c.Pause(ctx, true); err != nil || !q.Paused {
		t.Errorf("pause twice = %+v, %v", q, err)
	}
	if q, err := c.Pause(ctx, false); err != nil || q.Paused {
		t.Errorf("resume = %+v, %v", q, err)
	}
}

func TestActTokens(t *testing.T) {
	addr, c := serveAct(t, apitest.New(), api.Options{Tokens: []string{"s3cret"}})
	ctx := context.Background()
	calls := map[string]func() error{
		"submit": func() error { _, err := c.Submit(ctx, api.Submission{Allocation: "a1", Target: "dc2"}); return err },
		"cancel": func() error { _, err := c.Cancel(ctx, "mr-1"); return err },
		"pause":  func() error { _, err := c.Pause(ctx, true); return err },
		"resume": func() error { _, err := c.Pause(ctx, false); return err },
		"queue":  func() error { _, err := c.Queue(ctx, nil); return err },
		"show":   func() error { _, err := c.Request(ctx, "mr-1"); return err },
		"reservations": func() error {
			_, err := c.Reservations(ctx, nil)
			return err
		},
		"decisions": func() error { _, err := c.Decisions(ctx, api.DecisionFilter{}); return err },
	}
	for _, name := range []string{"submit", "cancel", "pause", "resume", "queue", "show", "reservations", "decisions"} {
		c.Token = ""
		if err := calls[name](); statusCode(err) != http.StatusForbidden {
			t.Errorf("%s without a token: %v, want 403", name, err)
		}
		c.Token = "wrong"
		if err := calls[name](); statusCode(err) != http.StatusForbidden {
			t.Errorf("%s with a bad token: %v, want 403", name, err)
		}
		c.Token = "s3cret"
		if err := calls[name](); err != nil {
			t.Errorf("%s with the token: %v", name, err)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, addr+"/v1/queue/mr-1", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("bearer token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

// TestReadOnlyTokens: a token of acl.read_token_file (Options.ReadTokens)
// reads every endpoint but the backup, and every change it asks is
// refused (403) saying it may only read, nothing changed; a token of
// acl.token_file does both; without write tokens (ACLs off) the read
// tokens change nothing.
func TestReadOnlyTokens(t *testing.T) {
	act := apitest.New()
	addr, c := serveAct(t, act, api.Options{Tokens: []string{"wr1te"}, ReadTokens: []string{"r3ad"}})
	ctx := context.Background()
	c.Token = "wr1te"
	id, err := c.Submit(ctx, api.Submission{Node: "n1", Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body, token string) (int, string) { return send(t, method, addr+path, body, token) }
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/queue", ""},
		{http.MethodGet, "/v1/queue/" + id, ""},
		{http.MethodGet, "/v1/reservations", ""},
		{http.MethodGet, "/v1/decisions", ""},
		{http.MethodGet, "/v1/status", ""},
		{http.MethodHead, "/v1/queue", ""},
	} {
		if code, body := do(tc.method, tc.path, tc.body, "r3ad"); code != http.StatusOK {
			t.Errorf("%s %s with a read-only token: %d %s; want 200", tc.method, tc.path, code, body)
		}
	}
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/queue", `{"node": "n2", "target": "dc2"}`},
		{http.MethodPost, "/v1/queue/pause", ""},
		{http.MethodPatch, "/v1/queue/" + id, `{"priority": 90}`},
		{http.MethodDelete, "/v1/queue/" + id, ""},
		{http.MethodGet, "/v1/operator/snapshot", ""},
	} {
		code, body := do(tc.method, tc.path, tc.body, "r3ad")
		if code != http.StatusForbidden || !strings.Contains(body, "the token sent may only read (it is one of acl.read_token_file's)") {
			t.Errorf("%s %s with a read-only token: %d %s; want 403 saying it may only read", tc.method, tc.path, code, body)
		}
	}
	if q, err := c.Queue(ctx, nil); err != nil || len(q.Requests) != 1 || q.Paused || q.Requests[0].State != api.StatePending || q.Requests[0].Priority == 90 {
		t.Errorf("the queue after the read-only token's changes: %+v, %v; want it as it was", q, err)
	}
	if code, body := do(http.MethodPost, "/v1/queue/pause", "", "wr1te"); code != http.StatusOK {
		t.Errorf("pause with a write token: %d %s", code, body)
	}
	if code, body := do(http.MethodGet, "/v1/queue", "", "wrong"); code != http.StatusForbidden || !strings.Contains(body, api.DeniedUnknownToken) {
		t.Errorf("an unknown token: %d %s", code, body)
	}

	// ACLs off: read tokens alone require nothing.
	open, _ := serveAct(t, apitest.New(), api.Options{ReadTokens: []string{"r3ad"}})
	req, _ := http.NewRequest(http.MethodPost, open+"/v1/queue/pause", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("pause without ACLs: %v, %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestQueueBlockingQuery(t *testing.T) {
	act := apitest.New()
	addr, c := serveAct(t, act, api.Options{})
	ctx := context.Background()
	id, err := c.Submit(ctx, api.Submission{Allocation: "a1", Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	q0, err := c.Queue(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing changes: the wait ends with the same index.
	q, err := c.Queue(ctx, &api.QueueOptions{WaitIndex: q0.Index, WaitTime: 20 * time.Millisecond})
	if err != nil || q.Index != q0.Index {
		t.Errorf("unchanged wait = index %d, %v; want %d", q.Index, err, q0.Index)
	}
	// An older index answers at once.
	if q, err := c.Queue(ctx, &api.QueueOptions{WaitIndex: q0.Index - 1}); err != nil || q.Index != q0.Index {
		t.Errorf("old index = %d, %v", q.Index, err)
	}
	// So does one past the agent's, which it never gave, with its own
	// index, which the client follows (it waited the whole wait).
	began := time.Now()
	if q, err := c.Queue(ctx, &api.QueueOptions{WaitIndex: q0.Index + 100, WaitTime: time.Minute}); err != nil || q.Index != q0.Index || time.Since(began) > 10*time.Second {
		t.Errorf("an index past the agent's = %d after %s, %v; want %d at once", q.Index, time.Since(began), err, q0.Index)
	}
	// A change wakes the waiter, whenever it happens; the answer shows it.
	done := make(chan api.Queue, 1)
	go func() {
		q, err := c.Queue(ctx, &api.QueueOptions{WaitIndex: q0.Index, WaitTime: time.Minute})
		if err != nil {
			t.Error(err)
		}
		done <- q
	}()
	act.Update(id, func(mr *api.MigrationRequest) { mr.State = api.StateRunning })
	q = <-done
	if q.Index <= q0.Index || q.Requests[0].State != api.StateRunning {
		t.Errorf("after a change: index %d (was %d), state %s", q.Index, q0.Index, q.Requests[0].State)
	}
	// A malformed wait is refused without an index too (it was ignored).
	for _, bad := range []string{"?index=x", "?index=1&wait=soon", "?wait=soon", "?wait=-1s"} {
		if code, _, body := getJSON(t, addr+"/v1/queue"+bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", bad, code, body)
		}
	}
}

// deadlineAct answers a blocking query at once, sending on got how long
// the server gave it to wait.
type deadlineAct struct {
	*apitest.Act
	got chan time.Duration
}

func (d deadlineAct) WaitIndex(ctx context.Context, index uint64) (uint64, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		d.got <- -1
	} else {
		d.got <- time.Until(dl)
	}
	return index, nil
}

// TestBlockingQueryWait: a blocking query waits ?wait=, 5m when it is
// absent or 0 (as Nomad's blocking queries take wait=0), 10m at most.
func TestBlockingQueryWait(t *testing.T) {
	act := deadlineAct{Act: apitest.New(), got: make(chan time.Duration, 1)}
	addr, _ := serveAct(t, act, api.Options{})
	for _, tc := range []struct {
		query string
		want  time.Duration
	}{
		{"?index=1", api.DefaultWait},
		{"?index=1&wait=30s", 30 * time.Second},
		{"?index=1&wait=0", api.DefaultWait},
		{"?index=1&wait=0s", api.DefaultWait},
		{"?index=1&wait=1h", api.MaxWait},
	} {
		if code, _, body := getJSON(t, addr+"/v1/queue"+tc.query); code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.query, code, body)
		}
		if got := <-act.got; got > tc.want || got < tc.want-5*time.Second {
			t.Errorf("%s waits %v, want %v", tc.query, got, tc.want)
		}
	}
	if api.DefaultWait != 5*time.Minute || api.MaxWait != 10*time.Minute {
		t.Errorf("DefaultWait %v, MaxWait %v; docs/api.md says 5m and 10m", api.DefaultWait, api.MaxWait)
	}
}

// TestBlockingQueryEndsOnStop: EndBlockingQueries answers a blocking query
// that waits, and one that comes after, at once with the queue as it is
// (a stopping agent's http.Server.Shutdown waits for every request).
func TestBlockingQueryEndsOnStop(t *testing.T) {
	act := apitest.New()
	s, err := api.NewServer(nopBackend{}, api.Options{Act: act})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c := &api.Client{Address: srv.URL}
	ctx := context.Background()
	if _, err := c.Submit(ctx, api.Submission{Allocation: "a1", Target: "dc2"}); err != nil {
		t.Fatal(err)
	}
	q0, err := c.Queue(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	wait := func() chan error {
		done := make(chan error, 1)
		go func() {
			q, err := c.Queue(ctx, &api.QueueOptions{WaitIndex: q0.Index, WaitTime: time.Minute})
			if err == nil && (q.Index != q0.Index || len(q.Requests) != 1) {
				err = fmt.Errorf("index %d with %d requests, want %d with 1", q.Index, len(q.Requests), q0.Index)
			}
			done <- err
		}()
		return done
	}
	answered := func(what string, done chan error) {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: still waiting 5s after EndBlockingQueries (its wait is a minute)", what)
		}
	}
	waiting := wait()
	select {
	case err := <-waiting:
		t.Fatalf("a blocking query with nothing changed answered before EndBlockingQueries: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	s.EndBlockingQueries()
	answered("the query waiting", waiting)
	answered("a query after", wait())
}

func TestReservationsAndDecisionsFilters(t *testing.T) {
	act := apitest.New()
	addr, c := serveAct(t, act, api.Options{})
	ctx := context.Background()
	act.AddReservation(api.Reservation{ID: "res-1", Request: "mr-1", Policy: "web", Locality: "dc2", State: api.ReservationHeld})
	act.AddReservation(api.Reservation{ID: "res-2", Request: "mr-2", Policy: "batch", Locality: "dc3", State: api.ReservationReleased})
	for i, d := range []api.Decision{
		{Policy: "web", Kind: api.DecisionReserve, Locality: "dc2", Request: "mr-1"},
		{Policy: "web", Kind: api.DecisionScale, Locality: "dc2"},
		{Policy: "batch", Kind: api.DecisionWait, Locality: "dc3", Request: "mr-2"},
	} {
		d.Time = act.Start.Add(time.Duration(i) * time.Minute)
		act.AddDecision(d)
	}
	rs, err := c.Reservations(ctx, &api.ReservationOptions{Policy: "batch"})
	if err != nil || len(rs) != 1 || rs[0].ID != "res-2" {
		t.Errorf("reservations of batch = %+v, %v", rs, err)
	}
	rs, _ = c.Reservations(ctx, &api.ReservationOptions{State: api.ReservationHeld, Locality: "dc2"})
	if len(rs) != 1 || rs[0].ID != "res-1" {
		t.Errorf("held in dc2 = %+v", rs)
	}
	for _, tc := range []struct {
		f    api.DecisionFilter
		want string
	}{
		{api.DecisionFilter{}, "wait scale reserve"},
		{api.DecisionFilter{Policy: "web"}, "scale reserve"},
		{api.DecisionFilter{Locality: "dc3"}, "wait"},
		{api.DecisionFilter{Kind: api.DecisionScale}, "scale"},
		{api.DecisionFilter{Request: "mr-1"}, "reserve"},
		{api.DecisionFilter{Limit: 1}, "wait"},
		{api.DecisionFilter{Since: act.Start.Add(time.Minute)}, "wait scale"},
	} {
		ds, err := c.Decisions(ctx, tc.f)
		var kinds []string
		for _, d := range ds {
			kinds = append(kinds, d.Kind)
		}
		if err != nil || strings.Join(kinds, " ") != tc.want {
			t.Errorf("decisions %+v = %v, %v; want %s", tc.f, kinds, err, tc.want)
		}
	}
	for _, bad := range []string{"?since=yesterday", "?limit=-1", "?limit=many"} {
		if code, _, body := getJSON(t, addr+"/v1/decisions"+bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", bad, code, body)
		}
	}
	// So is a kind no decision has (a typo would read as "No decisions.").
	for _, bad := range []string{"?kind=reserved", "?kind=Scale"} {
		code, _, body := getJSON(t, addr+"/v1/decisions"+bad)
		if code != http.StatusBadRequest || !strings.Contains(string(body), "submit, reserve, extend, release, reap, scale, wait, start, done, cancel, priority, hold, restore, reconcile, retry, fail") {
			t.Errorf("%s: %d %s, want 400 naming the kinds", bad, code, body)
		}
	}
	// A state no reservation can be in is a mistake (a typo would
	// otherwise read as "nothing held"), as it is for the queue.
	for _, bad := range []string{"?state=hold", "?state=Held"} {
		code, _, body := getJSON(t, addr+"/v1/reservations"+bad)
		if code != http.StatusBadRequest || !strings.Contains(string(body), "planned, placed, held, handing_over, released") {
			t.Errorf("%s: %d %s, want 400 naming the states", bad, code, body)
		}
	}
}

// failing is a backend whose state cannot be read.
type failing struct {
	api.ActBackend
	err error
}

func (f failing) Queue(context.Context) (api.Queue, error) { return api.Queue{}, f.err }

func TestActErrorsAndNoBackend(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		msg  string
	}{
		{errors.New("raft: boom"), 500, "raft: boom"},
		{fmt.Errorf("no leader: %w", api.ErrUnavailable), 503, "no leader"},
	} {
		addr, _ := serveAct(t, failing{ActBackend: apitest.New(), err: tc.err}, api.Options{})
		if code, _, body := getJSON(t, addr+"/v1/queue"); code != tc.code || !strings.Contains(string(body), `"error": "`+tc.msg+`"`) && !strings.Contains(string(body), `"error":"`+tc.msg+`"`) {
			t.Errorf("%v: %d %s, want %d and %q", tc.err, code, body, tc.code, tc.msg)
		}
	}
	s, err := api.NewServer(nopBackend{}, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	if code, _, body := getJSON(t, srv.URL+"/v1/queue"); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "migration queue") {
		t.Errorf("no act backend: %d %s, want 503", code, body)
	}
}

// TestEveryErrorIsJSON: as docs/api.md says, every answer that is not 2xx
// has the body {"error": "…"} with a message, whatever refused it: the
// router (404, 405), the token check (403), the body limit (413), a
// handler (400, 404, 409), an agent without the act half (503).
func TestEveryErrorIsJSON(t *testing.T) {
	url, _ := serveAct(t, apitest.New(), api.Options{})
	secured, _ := serveAct(t, apitest.New(), api.Options{Tokens: []string{"s3cret"}})
	noAct, err := api.NewServer(nopBackend{}, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	noActSrv := httptest.NewServer(noAct)
	defer noActSrv.Close()
	big := `{"node": "n1", "target": "dc2", "reason": "` + strings.Repeat("x", 70<<10) + `"}`
	for _, tc := range []struct {
		method, url, body string
		code              int
	}{
		{http.MethodGet, url + "/v1/nope", "", http.StatusNotFound},
		{http.MethodDelete, url + "/v1/queue", "", http.StatusMethodNotAllowed},
		{http.MethodGet, secured + "/v1/queue", "", http.StatusForbidden},
		{http.MethodPost, url + "/v1/queue", big, http.StatusRequestEntityTooLarge},
		{http.MethodPost, url + "/v1/queue", `{"target": 3}`, http.StatusBadRequest},
		{http.MethodGet, url + "/v1/queue/mr-404", "", http.StatusNotFound},
		{http.MethodGet, url + "/v1/reservations?state=hold", "", http.StatusBadRequest},
		{http.MethodGet, noActSrv.URL + "/v1/queue", "", http.StatusServiceUnavailable},
	} {
		req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error string `json:"error"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.code || derr != nil || e.Error == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %s, error %q (%v); want %d with a JSON error", tc.method, tc.url, resp.StatusCode,
				resp.Header.Get("Content-Type"), e.Error, derr, tc.code)
		}
	}
}

// TestLocalityFilters: ?locality= on the queue, reservations and decisions
// keeps what lies within the locality it names ("dc1" holds "dc1/*/web",
// the locality of a policy on node class web; exact matching listed
// nothing for it), not what only overlaps it ("dc1/web" is node pool web);
// a value that is no locality path is refused naming the field.
func TestLocalityFilters(t *testing.T) {
	act := apitest.New()
	addr, c := serveAct(t, act, api.Options{})
	ctx := context.Background()
	for _, s := range []api.Submission{{Node: "n1", Target: "dc2"}, {Allocation: "a2", Target: "dc3"}} {
		if _, err := c.Submit(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	act.Update("mr-1", func(r *api.MigrationRequest) { r.Source = "dc1/*/web" })
	act.AddReservation(api.Reservation{ID: "res-1", Request: "mr-1", Locality: "dc2/*/web", State: api.ReservationHeld})
	act.AddDecision(api.Decision{Time: act.Start, Kind: api.DecisionSubmit, Locality: "dc1/*/web", Request: "mr-1"})
	ids := func(filter string) string {
		q, err := c.Queue(ctx, &api.QueueOptions{Locality: filter})
		if err != nil {
			t.Fatalf("queue ?locality=%s: %v", filter, err)
		}
		var out []string
		for _, r := range q.Requests {
			out = append(out, r.ID)
		}
		rs, err := c.Reservations(ctx, &api.ReservationOptions{Locality: filter})
		if err != nil {
			t.Fatalf("reservations ?locality=%s: %v", filter, err)
		}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		ds, err := c.Decisions(ctx, api.DecisionFilter{Locality: filter})
		if err != nil {
			t.Fatalf("decisions ?locality=%s: %v", filter, err)
		}
		for _, d := range ds {
			out = append(out, d.Kind)
		}
		return strings.Join(out, " ")
	}
	for filter, want := range map[string]string{
		"dc1":         "mr-1 submit",
		"dc1/*":       "mr-1 submit",
		"dc1/*/web":   "mr-1 submit",
		"*/*/web":     "mr-1 res-1 submit",
		"dc1/web":     "",
		"dc1/x/web":   "",
		"dc2":         "mr-1 mr-2 res-1",
		"dc2/*/web":   "res-1",
		"dc3":         "mr-2",
		"dc9":         "",
		"":            "mr-1 mr-2 res-1 submit",
		"dc1/*/web/*": "bad",
	} {
		if filter == "dc1/*/web/*" {
			for _, path := range []string{"/v1/queue", "/v1/reservations", "/v1/decisions"} {
				code, _, body := getJSON(t, addr+path+"?locality="+filter)
				if code != http.StatusBadRequest || !strings.Contains(string(body), `{"error":"locality \"dc1/*/web/*\" has more than three parts`) {
					t.Errorf("%s?locality=%s: %d %s, want 400 naming the field", path, filter, code, body)
				}
			}
			continue
		}
		if got := ids(filter); got != want {
			t.Errorf("?locality=%s: %q, want %q", filter, got, want)
		}
	}
	// "*" alone would keep everything: a filter names something.
	for _, path := range []string{"/v1/queue", "/v1/reservations", "/v1/decisions"} {
		code, _, body := getJSON(t, addr+path+"?locality=*")
		if code != http.StatusBadRequest || !strings.Contains(string(body), `{"error":"locality \"*\" matches everything`) {
			t.Errorf("%s?locality=*: %d %s, want 400 naming the field", path, code, body)
		}
	}
}

func TestInLocality(t *testing.T) {
	for _, tc := range []struct {
		loc, filter string
		want        bool
	}{
		{"dc1/*/web", "dc1", true},
		{"dc1/*/web", "dc1/*/web", true},
		{"dc1/*/web", "*/*/web", true},
		{"dc1/default/web", "dc1/*/web", true},
		{"dc1/*/web", "dc1/web", false},
		{"dc1/*/web", "dc1/default/web", false},
		{"dc1", "dc1/*/web", false},
		{"dc2", "dc1", false},
		{"*/batch", "*/batch", true},
		{"*/batch", "dc1", false},
		{"not//a path", "not//a path", true},
		{"not//a path", "not", false},
	} {
		if got := api.InLocality(tc.loc, tc.filter); got != tc.want {
			t.Errorf("InLocality(%q, %q) = %v, want %v", tc.loc, tc.filter, got, tc.want)
		}
	}
}
