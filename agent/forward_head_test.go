package agent

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/internal/syncbuf"
)

// TestHeadIsAReadAnsweredLocally: a server that does not lead answers a
// HEAD under /v1/ from its own state, as a GET, and passes on every other
// method (here, knowing no leader, refuses it with 503), as
// docs/clustering.md's Followers says ("every method but GET and HEAD").
func TestHeadIsAReadAnsweredLocally(t *testing.T) {
	var buf syncbuf.Buffer
	a := forwardingAgent(t, &buf)
	// A server with no cluster yet: it knows no leader and never leads.
	node, err := cluster.New(cluster.Config{NodeID: "alone", InMemory: true}, a.fsm, a.log.Named("cluster"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	a.node = node
	local := 0
	h := a.forwardWrites(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local++
		w.WriteHeader(http.StatusOK)
	}))
	for _, tc := range []struct {
		method string
		want   int
		local  bool
	}{
		{http.MethodGet, http.StatusOK, true},
		{http.MethodHead, http.StatusOK, true},
		{http.MethodPost, http.StatusServiceUnavailable, false},
		{http.MethodPut, http.StatusServiceUnavailable, false},
		{http.MethodDelete, http.StatusServiceUnavailable, false},
		{http.MethodPatch, http.StatusServiceUnavailable, false},
	} {
		before := local
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/v1/queue", nil))
		if rec.Code != tc.want || (local > before) != tc.local {
			t.Errorf("%s /v1/queue on a server that knows no leader: %d, answered here %v; want %d, answered here %v",
				tc.method, rec.Code, local > before, tc.want, tc.local)
		}
		if tc.local && rec.Header().Get(knownLeaderHeader) != "false" {
			t.Errorf("%s /v1/queue answered here without %s: false", tc.method, knownLeaderHeader)
		}
	}
}
