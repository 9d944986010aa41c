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
// for, and its message.
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
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.err.Error()) {
				t.Errorf("%s %s with %q: %d %s, want %d", req.method, req.path, tc.err, resp.StatusCode, body, tc.code)
			}
		}
		srv.Close()
	}
}
