package agent

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// TestFollowerAnswersAfterItsWritesAndWithoutALeader: an operator who
// changes something through a follower and then reads from it sees the
// change (the follower relays the leader's answer once its own state has
// applied it); and a follower that has lost the leader (two of three
// servers gone: no quorum) says so on the reads it takes from the leader's
// cycle, instead of answering that nothing is forecast.
func TestFollowerAnswersAfterItsWritesAndWithoutALeader(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers")
	}
	tc := newTestCluster(t, 600)
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	f := (l + 1) % 3
	ctx := context.Background()
	fapi := tc.servers[f].api
	eventually(t, 30*time.Second, "the follower to know the leader", func() bool {
		_, err := fapi.Pause(ctx, false)
		return err == nil
	})

	for round := range 10 {
		for _, paused := range []bool{true, false} {
			if _, err := fapi.Pause(ctx, paused); err != nil {
				t.Fatalf("round %d: pause=%v through the follower: %v", round, paused, err)
			}
			q, err := fapi.Queue(ctx, nil)
			if err != nil {
				t.Fatalf("round %d: queue from the follower: %v", round, err)
			}
			if q.Paused != paused {
				t.Fatalf("round %d: the follower answered paused=%v right after its own pause=%v went through", round, q.Paused, paused)
			}
		}
	}

	// Forecasts come from the leader's last cycle.
	eventually(t, 60*time.Second, "forecasts on the follower", func() bool {
		fs, err := fapi.Forecasts(ctx)
		return err == nil && len(fs) > 0
	})
	other := 3 - l - f
	tc.servers[l].stop()
	tc.servers[other].stop()
	eventually(t, 60*time.Second, "the follower to say it has no leader's cycle", func() bool {
		_, err := fapi.Hotspots(ctx)
		var se *api.StatusError
		return errors.As(err, &se) && se.Code == http.StatusServiceUnavailable
	})
	for name, call := range map[string]func() error{
		"forecasts": func() error { _, err := fapi.Forecasts(ctx); return err },
		"forecast":  func() error { _, err := fapi.Forecast(ctx, "dc1", "cpu"); return err },
		"anomalies": func() error { _, err := fapi.Anomalies(ctx); return err },
	} {
		var se *api.StatusError
		if err := call(); !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
			t.Errorf("%s without a leader: %v; want 503", name, err)
		}
	}
	// The replicated state still answers.
	if _, err := fapi.Queue(ctx, nil); err != nil {
		t.Errorf("queue without a leader: %v", err)
	}
}
