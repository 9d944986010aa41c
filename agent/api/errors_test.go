package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/api/apitest"
)

// failingOperator answers every operator call with err.
type failingOperator struct{ err error }

func (f failingOperator) RaftConfiguration(context.Context) (api.RaftConfiguration, error) {
	return api.RaftConfiguration{}, f.err
}
func (f failingOperator) RemovePeer(context.Context, string, string) error { return f.err }

// TestBackendErrorsAnswerOneStatus: the queue and the operator endpoints
// answer a backend's error with the same status, the one its kind calls
// for, and its message (without the kind's word: "no leader", not "no
// leader: unavailable").
func TestBackendErrorsAnswerOneStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errors.New("raft: boom"), http.StatusInternalServerError},
		{&api.InvalidError{Field: "id", Reason: "names the leader"}, http.StatusBadRequest},
		{fmt.Errorf("server x: %w", api.ErrNotFound), http.StatusNotFound},
		{&api.ConflictError{Existing: "mr-1"}, http.StatusConflict},
		{fmt.Errorf("64 requests: %w", api.ErrQueueFull), http.StatusTooManyRequests},
		{fmt.Errorf("no leader: %w", api.ErrUnavailable), http.StatusServiceUnavailable},
		{fmt.Errorf("nodes index: 403 (Permission denied; Nomad refused GET /v1/nodes with the agent's token): %w", api.ErrNomadRefused),
			http.StatusBadGateway},
		{fmt.Errorf("asking the leader: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
		{fmt.Errorf("asking the leader: %w", context.Canceled), http.StatusServiceUnavailable},
	} {
		s, err := api.NewServer(nopBackend{}, api.Options{
			Act:      failing{ActBackend: apitest.New(), err: tc.err},
			Operator: failingOperator{err: tc.err},
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s)
		for _, req := range []struct{ method, path string }{
			{http.MethodGet, "/v1/queue"},
			{http.MethodGet, "/v1/operator/raft/configuration"},
			{http.MethodDelete, "/v1/operator/raft/peer?id=x"},
		} {
			r, err := http.NewRequest(req.method, srv.URL+req.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// The message, without the word of the sentinel that chose
			// the status, which the status line says already.
			msg := tc.err.Error()
			for _, kind := range []error{api.ErrNotFound, api.ErrQueueFull, api.ErrUnavailable, api.ErrNomadRefused} {
				msg = strings.TrimSuffix(msg, ": "+kind.Error())
			}
			if resp.StatusCode != tc.code || !strings.Contains(string(body), `"error":"`+msg+`"`) {
				t.Errorf("%s %s with %q: %d %s, want %d and %q", req.method, req.path, tc.err, resp.StatusCode, body, tc.code, msg)
			}
		}
		srv.Close()
	}
}

// TestAnswerNotFromAnAgent: an error answer that is not a foreshape
// agent's (another server at the address, a proxy's page) says so and
// names the address, instead of an empty message.
func TestAnswerNotFromAnAgent(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"empty", "", []string{"agent answered 404 Not Found: GET /v1/status: not a foreshape agent's answer (is %s the agent's HTTP API?)"}},
		{"a page", "<html><body>Not here</body></html>", []string{"not a foreshape agent's answer", "<html><body>Not here</body></html>"}},
		{"long", strings.Repeat("x", 1000), []string{strings.Repeat("x", 200) + "…"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			_, err := (&api.Client{Address: srv.URL}).Status(context.Background())
			for _, w := range tc.want {
				if strings.Contains(w, "%s") {
					w = fmt.Sprintf(w, srv.URL)
				}
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want it to hold %q", err, w)
				}
			}
			if tc.name == "long" && len(err.Error()) > 400 {
				t.Errorf("error of %d bytes, want the body cut short", len(err.Error()))
			}
		})
	}
}

// removingOperator records the server a removal names.
type removingOperator struct {
	failingOperator
	id, address string
}

func (o *removingOperator) RemovePeer(_ context.Context, id, address string) error {
	o.id, o.address = id, address
	return nil
}

// TestRemovePeerAnswers: DELETE /v1/operator/raft/peer names the server
// with exactly one of ?id= and ?address= (400 otherwise, the backend not
// asked) and answers a removal done with a 204 without a body, as
// docs/api.md says.
func TestRemovePeerAnswers(t *testing.T) {
	for _, tc := range []struct {
		query       string
		code        int
		id, address string
	}{
		{"?id=s2", http.StatusNoContent, "s2", ""},
		{"?address=10.0.0.12:7576", http.StatusNoContent, "", "10.0.0.12:7576"},
		{"", http.StatusBadRequest, "", ""},
		{"?id=s2&address=10.0.0.12:7576", http.StatusBadRequest, "", ""},
	} {
		op := &removingOperator{}
		s, err := api.NewServer(nopBackend{}, api.Options{Operator: op})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodDelete, "/v1/operator/raft/peer"+tc.query, nil)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		body := w.Body.String()
		if w.Code != tc.code || op.id != tc.id || op.address != tc.address {
			t.Errorf("%q: %d %q, removed id %q address %q; want %d, id %q address %q", tc.query, w.Code, body, op.id, op.address, tc.code, tc.id, tc.address)
		}
		if tc.code == http.StatusNoContent && body != "" {
			t.Errorf("%q: a 204 with the body %q", tc.query, body)
		}
		if tc.code == http.StatusBadRequest && !strings.Contains(body, "exactly one of ?id= and ?address=") {
			t.Errorf("%q: %s; want the error to say what names the server", tc.query, body)
		}
	}
}
