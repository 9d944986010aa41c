package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// TestFromLeaderKeepsTheStatus: a follower passing on the leader's answer
// to a forwarded request answers with the leader's status: a 502 (Nomad
// refused the agent's token a call) stays a 502, and the message is the
// leader's, without the sentinel's words twice.
func TestFromLeaderKeepsTheStatus(t *testing.T) {
	for _, tc := range []struct {
		code int
		kind error
	}{
		{400, api.ErrInvalid},
		{404, api.ErrNotFound},
		{409, api.ErrConflict},
		{429, api.ErrQueueFull},
		{502, api.ErrNomadRefused},
		{500, api.ErrUnavailable},
	} {
		const msg = "migrate: nodes index: Unexpected response code: 403 (Permission denied; Nomad refused GET /v1/nodes ...)"
		err := fromLeader(&api.StatusError{Code: tc.code, Message: msg})
		if !errors.Is(err, tc.kind) {
			t.Errorf("the leader's %d: %v; want it to wrap %v", tc.code, err, tc.kind)
		}
		if tc.code != 500 && api.ErrorMessage(err) != msg {
			t.Errorf("the leader's %d: the follower says %q; want %q", tc.code, api.ErrorMessage(err), msg)
		}
	}
}

// TestLeaderViewOutlivesItsCaller: a follower reads the leader's cycle for
// every caller in the next second or cycle, so the read is not the first
// caller's to cancel: a caller that went away (a scrape's timeout, an
// operator's Ctrl-C, a page left) made every read of the forecasts,
// hotspots and anomalies on that server a 503 "context canceled" for a
// second.
func TestLeaderViewOutlivesItsCaller(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	tc := newTestCluster(t, 60)
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	follower := tc.servers[(l+1)%3].a
	ctx := context.Background()
	eventually(t, 30*time.Second, "the follower reads the leader's cycle", func() bool {
		follower.leaderCache.mu.Lock()
		follower.leaderCache.view = nil
		follower.leaderCache.mu.Unlock()
		v, ok := follower.fromLeader(ctx)
		return ok && v.err == nil
	})
	follower.leaderCache.mu.Lock()
	follower.leaderCache.view = nil
	follower.leaderCache.mu.Unlock()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if v, ok := follower.fromLeader(gone); !ok || v.err != nil {
		t.Errorf("the read for a caller that went away: ok %v, %v; want the leader's cycle", ok, v.err)
	}
	if v, ok := follower.fromLeader(ctx); !ok || v.err != nil {
		t.Errorf("the next caller's read: ok %v, %v; want the leader's cycle", ok, v.err)
	}
}
