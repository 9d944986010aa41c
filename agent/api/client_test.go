package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
)

// slowly answers after d, or not at all when the client goes first.
func slowly(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
}

// TestBlockingQueryOutlivesTheClientsTimeout: a blocking query gets its
// wait on top of the bound of a plain call whatever HTTP client carries
// it, here a TLS one with a Timeout of its own, as the CLI's -ca-cert
// client has (30 s): it was cut off at that Timeout, so queue watch over
// TLS ended every quiet wait after 30 s with an error. A call that does
// not block keeps the client's bound, and the caller's client is not
// changed.
func TestBlockingQueryOutlivesTheClientsTimeout(t *testing.T) {
	act := apitest.New()
	s, err := api.NewServer(nopBackend{}, api.Options{Act: act})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", s)
	mux.Handle("/v1/status", slowly(time.Second, s))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	hc := srv.Client()
	hc.Timeout = 200 * time.Millisecond
	c := &api.Client{Address: srv.URL, HTTP: hc}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q0, err := c.Queue(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing changes past q0's index: the agent holds the query its
	// whole wait, longer than the client's Timeout.
	start := time.Now()
	q, err := c.Queue(ctx, &api.QueueOptions{WaitIndex: q0.Index, WaitTime: 500 * time.Millisecond})
	if err != nil {
		t.Fatalf("a blocking query the agent held 500 ms, with a client Timeout of 200 ms: %v", err)
	}
	if q.Index != q0.Index || time.Since(start) < 400*time.Millisecond {
		t.Errorf("index %d after %s; want %d after the 500 ms wait", q.Index, time.Since(start), q0.Index)
	}
	if _, err := c.Status(ctx); err == nil {
		t.Errorf("a call that does not block, answered after 1 s, outlived the client's 200 ms Timeout")
	}
	if hc.Timeout != 200*time.Millisecond {
		t.Errorf("the caller's client was changed: Timeout %s", hc.Timeout)
	}
}

// TestAnswerErrorsNameTheURL: an agent that sends its headers and then
// stalls, or answers 200 with what is not JSON, is named by the request's
// method and URL, as one that does not answer at all is by the transport:
// the errors were "api: read /v1/status: context deadline exceeded" and
// "api: decode /v1/status: …", naming no address.
func TestAnswerErrorsNameTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if r.URL.Path == "/v1/health" {
			_, _ = w.Write([]byte("<html>a proxy's page</html>"))
			return
		}
		_, _ = w.Write([]byte(`{"node": `))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	c := &api.Client{Address: srv.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Status(ctx)
	var ue *url.Error
	if want := `Get "` + srv.URL + `/v1/status": reading the answer: `; !errors.As(err, &ue) || !strings.Contains(fmt.Sprint(err), want) ||
		!errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stalled answer: %v; want a *url.Error with %q that wraps the deadline", err, want)
	}
	_, err = c.Health(context.Background())
	if want := `Get "` + srv.URL + `/v1/health": decoding the answer: invalid character '<'`; !errors.As(err, &ue) || !strings.Contains(fmt.Sprint(err), want) {
		t.Errorf("an answer not JSON: %v; want a *url.Error with %q", err, want)
	}
}

// TestQueryMetaSaysNoLeader: X-Foreshape-Known-Leader: false on a read is
// NoLeader in its QueryMeta; true, or no header (a client agent's answer,
// an older agent's), is not.
func TestQueryMetaSaysNoLeader(t *testing.T) {
	act := apitest.New()
	ctx := context.Background()
	s, err := api.NewServer(nopBackend{}, api.Options{Act: act})
	if err != nil {
		t.Fatal(err)
	}
	var header atomic.Value
	header.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := header.Load().(string); h != "" {
			w.Header().Set(api.KnownLeaderHeader, h)
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := &api.Client{Address: srv.URL}
	id, err := c.Submit(ctx, api.Submission{Allocation: "a1", Target: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string]func() (api.QueryMeta, error){
		"queue": func() (api.QueryMeta, error) { _, m, err := c.QueueWithMeta(ctx, nil); return m, err },
		"blocking queue": func() (api.QueryMeta, error) {
			_, m, err := c.QueueWithMeta(ctx, &api.QueueOptions{WaitIndex: 1, WaitTime: time.Millisecond})
			return m, err
		},
		"request": func() (api.QueryMeta, error) { _, m, err := c.RequestWithMeta(ctx, id); return m, err },
		"reservations": func() (api.QueryMeta, error) {
			_, m, err := c.ReservationsWithMeta(ctx, nil)
			return m, err
		},
		"decisions": func() (api.QueryMeta, error) {
			_, m, err := c.DecisionsWithMeta(ctx, api.DecisionFilter{})
			return m, err
		},
	}
	for _, h := range []string{"false", "true", ""} {
		header.Store(h)
		for name, read := range reads {
			m, err := read()
			if err != nil || m.NoLeader != (h == "false") {
				t.Errorf("%s with %s %q: NoLeader %v, %v", name, api.KnownLeaderHeader, h, m.NoLeader, err)
			}
		}
	}
}
