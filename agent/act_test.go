package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
)

// TestActBackendOnAFollower: the act backend's writes made in-process on a
// follower (as the dashboard makes them) reach the leader, and its typed
// errors come back as such.
func TestActBackendOnAFollower(t *testing.T) {
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
	eventually(t, 30*time.Second, "the follower knows the leader's API", func() bool {
		_, err := follower.leaderHTTP(ctx)
		return err == nil
	})
	if err := follower.act.SetPaused(ctx, true); err != nil {
		t.Fatalf("pause on a follower: %v", err)
	}
	eventually(t, 10*time.Second, "the pause replicated to every server", func() bool {
		for _, s := range tc.servers {
			if !s.a.fsm.Act().Paused {
				return false
			}
		}
		return true
	})
	if err := follower.act.Cancel(ctx, "mr-404"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("cancel of an unknown request on a follower: %v; want ErrNotFound", err)
	}
	if _, err := follower.act.Submit(ctx, api.Submission{Node: "no-such-node", Target: "dc2"}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("a bad submission on a follower: %v; want ErrInvalid from the leader", err)
	}
	if err := follower.act.SetPaused(ctx, false); err != nil || tc.servers[l].a.fsm.Act().Paused && !eventuallyResumed(tc) {
		t.Errorf("resume on a follower: %v", err)
	}
}

func eventuallyResumed(tc *testCluster) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !tc.servers[tc.leader()].a.fsm.Act().Paused {
			return true
		}
	}
	return false
}
