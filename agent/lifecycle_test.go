package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// hangingNomad is a Nomad that takes the requests whose path is in hang
// and answers them only when the test ends; every other path is a 404.
// entered is closed on the first held request.
func hangingNomad(t *testing.T, hang ...string) (url string, entered <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	in := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range hang {
			if r.URL.Path == p {
				once.Do(func() { close(in) })
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv.URL, in
}

// TestClientStopDoesNotWaitOnNomad: a client agent without nomad.node_id
// asks its local Nomad agent for its node; stopped while that Nomad takes
// the call and does not answer, it stops at once. Before, the call was
// made without the agent's context, so Run returned only once the call
// timed out (30 s), past the client agent's ClientStopWait and Nomad's
// default kill_timeout of 5 s.
func TestClientStopDoesNotWaitOnNomad(t *testing.T) {
	nomad, entered := hangingNomad(t, "/v1/agent/self")
	cfg, _ := lonelyClientConfig(t, "stopping")
	cfg.Nomad.Address = nomad
	cfg.Nomad.NodeID = ""
	c, err := NewClient(cfg, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { c.Close() })
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the client agent did not ask Nomad for its node")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(ClientStopWait):
		t.Fatalf("Run still runs %s after its stop, waiting on Nomad", ClientStopWait)
	}
}
