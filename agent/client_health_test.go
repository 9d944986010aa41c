package agent

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestClientAgentAnswersItsHealth: a client agent answers GET and HEAD
// /v1/health and /v1/ready itself, before it has reached a server (a load
// balancer's HEAD check of the agent it runs beside). HEAD was passed on
// to a leader it did not know: 503.
func TestClientAgentAnswersItsHealth(t *testing.T) {
	c := &Client{name: "client-a", log: hclog.NewNullLogger()}
	none := []string{}
	c.tokens.Store(&none)
	c.readTok.Store(&none)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, path := range []string{"/v1/health", "/v1/ready"} {
			rec := httptest.NewRecorder()
			c.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
			if rec.Code != http.StatusOK {
				t.Errorf("%s %s: %d %s; want 200 from the client agent itself", method, path, rec.Code, rec.Body)
			}
		}
	}
	// Anything else waits for a server.
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/queue", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /v1/queue before reaching a server: %d; want 503", rec.Code)
	}
}
