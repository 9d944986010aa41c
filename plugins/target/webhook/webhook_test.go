package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/plugins/target"
	"github.com/foreshape/foreshape/plugins/target/targettest"
)

// receiver is a scaling service: it keeps a count, records what it was
// sent, and answers as told.
type receiver struct {
	mu       sync.Mutex
	count    int
	payloads []target.Payload
	requests []*http.Request
	bodies   []string
	// answers are the status codes of the next answers (then 200);
	// behave overrides them.
	answers []int
	behave  targettest.Behaviour
	// then, when set, replaces behave once the next request has arrived
	// (that request keeps the old behaviour).
	then *targettest.Behaviour
	srv  *httptest.Server
}

func newReceiver(t *testing.T, initial int) *receiver {
	r := &receiver{count: initial}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests = append(r.requests, req)
	r.bodies = append(r.bodies, string(body))
	b := r.behave
	if r.then != nil {
		r.behave, r.then = *r.then, nil
	}
	code := http.StatusOK
	if len(r.answers) > 0 {
		code, r.answers = r.answers[0], r.answers[1:]
	}
	r.mu.Unlock()
	switch b {
	case targettest.Refuse:
		http.Error(w, "count above the group's maximum", http.StatusUnprocessableEntity)
		return
	case targettest.Fail:
		http.Error(w, "autoscaling group busy", http.StatusServiceUnavailable)
		return
	case targettest.Hang:
		<-req.Context().Done()
		return
	}
	if code != http.StatusOK {
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		http.Error(w, "not now", code)
		return
	}
	var p target.Payload
	if err := json.Unmarshal(body, &p); err == nil {
		r.mu.Lock()
		r.count = p.Count
		r.payloads = append(r.payloads, p)
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusAccepted)
}

func (r *receiver) Count(t *testing.T) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

func (r *receiver) Received(t *testing.T) []target.Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]target.Payload(nil), r.payloads...)
}

func (r *receiver) Behave(t *testing.T, b targettest.Behaviour) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.behave = b
}

// sleeps records back-off waits without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func newTarget(t *testing.T, r *receiver, hcl string) (target.Target, *sleeps) {
	t.Helper()
	cfg, diags := decode(t, `url = "`+r.srv.URL+`/scale"`+"\n"+hcl)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	s := &sleeps{}
	tg, err := New(cfg, target.Env{Sleep: s.sleep})
	if err != nil {
		t.Fatal(err)
	}
	return tg, s
}

type fixture struct{}

func (fixture) CarriesAmount() bool { return true }

func (fixture) New(t *testing.T, initial int) (target.Target, targettest.System) {
	r := newReceiver(t, initial)
	tg, _ := newTarget(t, r, "timeout = \"30s\"\nretries = 2")
	return tg, r
}

func TestConformance(t *testing.T) {
	targettest.Run(t, fixture{})
}

func action(id string, count int) target.Action {
	return target.Action{ID: id, Policy: "batch", Scale: "asg", Locality: "*/batch", Direction: target.Up, Amount: 2, Count: count,
		Min: 2, Max: 40, Reason: "reservation for mr-3 does not fit", Time: time.Date(2026, 1, 5, 9, 30, 0, 0, time.UTC)}
}

// The request carries the documented payload, the policy's headers and
// an idempotency key that stays the same across retries.
func TestRequest(t *testing.T) {
	r := newReceiver(t, 4)
	r.answers = []int{http.StatusBadGateway}
	tg, sl := newTarget(t, r, `
method  = "PUT"
headers = { "X-Scale-Owner" = "foreshape", Authorization = "Bearer t0k" }
`)
	res, err := tg.Scale(context.Background(), action("act-9", 6))
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "502") || len(sl.d) != 1 || sl.d[0] != time.Second {
		t.Errorf("result = %+v, sleeps %v; want one retry after 1s", res, sl.d)
	}
	for i, req := range r.requests {
		if req.Method != http.MethodPut || req.URL.Path != "/scale" || req.Header.Get("Content-Type") != "application/json" ||
			req.Header.Get("X-Scale-Owner") != "foreshape" || req.Header.Get("Authorization") != "Bearer t0k" ||
			req.Header.Get("Idempotency-Key") != "act-9" || req.Header.Get("User-Agent") != "foreshape" {
			t.Errorf("request %d: %s %s %v", i, req.Method, req.URL, req.Header)
		}
	}
	want := `{"request_id":"act-9","policy":"batch","scale":"asg","locality":"*/batch","direction":"up","amount":2,"count":6,` +
		`"min":2,"max":40,"reason":"reservation for mr-3 does not fit","time":"2026-01-05T09:30:00Z"}`
	if r.bodies[1] != want {
		t.Errorf("body = %s\nwant   %s", r.bodies[1], want)
	}
}

func TestBodyTemplate(t *testing.T) {
	r := newReceiver(t, 1)
	tg, _ := newTarget(t, r, `
body    = "desired={{ .Count }}&why={{ .Reason }}&dir={{ .Direction }}"
headers = { "Content-Type" = "application/x-www-form-urlencoded" }
`)
	if _, err := tg.Scale(context.Background(), action("a", 5)); err != nil {
		t.Fatal(err)
	}
	if r.bodies[0] != "desired=5&why=reservation for mr-3 does not fit&dir=up" ||
		r.requests[0].Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("body %q, content type %q", r.bodies[0], r.requests[0].Header.Get("Content-Type"))
	}
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answers  []int
		retries  string
		attempts int
		kind     target.Kind
		sleeps   string
	}{
		{"retry after 429", []int{429, 200}, "3", 2, 0, "[7s]"},
		{"backoff doubles", []int{500, 503, 504, 200}, "3", 4, 0, "[1s 2s 4s]"},
		{"gives up", []int{500, 500, 500}, "2", 3, target.Failed, "[1s 2s]"},
		{"backoff stops at 30s", []int{500, 500, 500, 500, 500, 500, 500, 200}, "10", 8, 0, "[1s 2s 4s 8s 16s 30s 30s]"},
		{"no retries", []int{503}, "0", 1, target.Failed, "[]"},
		{"4xx is a refusal", []int{404}, "3", 1, target.Refused, "[]"},
		{"408 is retried", []int{408, 200}, "3", 2, 0, "[1s]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, 1)
			r.answers = tc.answers
			tg, sl := newTarget(t, r, "retries = "+tc.retries)
			res, err := tg.Scale(context.Background(), action("r", 3))
			if target.KindOf(err) != tc.kind || res.Attempts != tc.attempts || len(r.requests) != tc.attempts {
				t.Errorf("err %v (kind %s), %d attempts, %d requests; want kind %s, %d", err, target.KindOf(err), res.Attempts,
					len(r.requests), tc.kind, tc.attempts)
			}
			if got := fmtDurations(sl.d); got != tc.sleeps {
				t.Errorf("slept %s, want %s", got, tc.sleeps)
			}
			if err != nil && !strings.Contains(err.Error(), "/scale") {
				t.Errorf("error does not name the URL: %v", err)
			}
		})
	}
}

// An attempt that timed out may have acted: when a retry then fails, the
// outcome is unknown, a timeout.
func TestTimeoutThenFailureIsATimeout(t *testing.T) {
	r := newReceiver(t, 1)
	tg, _ := newTarget(t, r, "timeout = \"1s\"\nretries = 1")
	// The first attempt hangs (until its timeout, long enough for it to
	// reach the receiver on a loaded machine); the retry fails.
	fail := targettest.Fail
	r.Behave(t, targettest.Hang)
	r.mu.Lock()
	r.then = &fail
	r.mu.Unlock()
	_, err := tg.Scale(context.Background(), action("t", 3))
	if !errors.Is(err, target.ErrTimeout) || !strings.Contains(err.Error(), "503") {
		t.Errorf("err = %v, want a timeout after the 503", err)
	}
}

func fmtDurations(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.String())
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestRetryAfter: an answer's Retry-After (in seconds) sets the wait, at
// most the 30s the back-off stops at; a date or nonsense leaves the
// back-off to choose.
func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"7", 7 * time.Second},
		{" 12 ", 12 * time.Second},
		{"120", 30 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"Wed, 21 Oct 2026 07:28:00 GMT", 0},
		{"", 0},
	} {
		if got := retryAfter(tc.header); got != tc.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tc.header, got, tc.want)
		}
	}
}

// TestConnectionErrorIsRetried: a receiver that cannot be reached is
// tried again after the back-off, as a 5xx is, and the action fails after
// the retries.
func TestConnectionErrorIsRetried(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	cfg, diags := decode(t, `url = "`+closed.URL+`/scale"`+"\nretries = 2")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	s := &sleeps{}
	tg, err := New(cfg, target.Env{Sleep: s.sleep})
	if err != nil {
		t.Fatal(err)
	}
	res, err := tg.Scale(context.Background(), action("c", 3))
	if !errors.Is(err, target.ErrFailed) || res.Attempts != 3 || fmtDurations(s.d) != "[1s 2s]" {
		t.Errorf("err %v, %d attempts, slept %s; want a failure after 3 attempts, 1s and 2s apart", err, res.Attempts, fmtDurations(s.d))
	}
}
