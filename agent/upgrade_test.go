package agent

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/api"
	"github.com/foreshape/foreshape/agent/state"
)

// TestOlderServerShowsItsHalt restarts a follower of a running three-server
// cluster as a server of an older release that cannot read the samples the
// leader appends every cycle (state.NewOlderFSM through Options.older). Its
// state stops at the first such entry, and the agent says so where an
// operator looks during an upgrade:
//   - the follower's GET /v1/status carries halted (fails with backend.go's
//     `st.Halted = ns.Halted` removed from Status),
//   - the leader's GET /v1/operator/raft/configuration (what `operator
//     raft list-peers` prints) carries halted for that server (fails with
//     operator.go's `rs.Halted = h.Info.Halted` removed),
//   - the follower's GET /v1/ready answers 503 with the halt and the words
//     to upgrade it (fails with agent.go's `Ready: a.node.Ready` removed
//     from api.Options: /v1/ready then answers 200).
//
// The current servers show no halt.
func TestOlderServerShowsItsHalt(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 20)
	for i := range 3 {
		tc.start(i)
	}
	l := tc.leader()
	f := (l + 1) % 3
	tc.servers[f].stop()
	older := tc.startWith(f, Options{older: &state.Older{Types: []state.CommandType{state.TypeAppendSamples}}})
	ctx := context.Background()

	var st api.Status
	eventually(t, 30*time.Second, "the older follower's /v1/status to show a halt", func() bool {
		var err error
		st, err = older.api.Status(ctx)
		return err == nil && st.Halted != ""
	})
	if !strings.Contains(st.Halted, "append_samples") || !strings.Contains(st.Halted, "upgrade it to the release the other servers run") {
		t.Errorf("/v1/status halted = %q, want the entry's type and the upgrade words", st.Halted)
	}
	if st.IsLeader {
		t.Fatalf("the older server leads (leader was server-%d); this test needs it a follower", l)
	}

	_, err := older.api.Ready(ctx)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Fatalf("older follower's /v1/ready: %v, want a 503", err)
	}
	if !strings.Contains(se.Message, "stopped applying the log") || !strings.Contains(se.Message, "upgrade it to the release the other servers run") {
		t.Errorf("older follower's /v1/ready says %q, want the halt and the upgrade words", se.Message)
	}

	id := st.Node
	var rc api.RaftConfiguration
	eventually(t, 30*time.Second, "the leader's raft configuration to show the halt", func() bool {
		var err error
		rc, err = tc.servers[l].api.RaftConfiguration(ctx)
		if err != nil {
			return false
		}
		for _, s := range rc.Servers {
			if s.ID == id && s.Halted != "" {
				return true
			}
		}
		return false
	})
	for _, s := range rc.Servers {
		switch {
		case s.ID == id && !strings.Contains(s.Halted, "append_samples"):
			t.Errorf("leader's configuration: %s halted = %q, want the entry's type", s.ID, s.Halted)
		case s.ID != id && s.Halted != "":
			t.Errorf("leader's configuration: current server %s halted = %q", s.ID, s.Halted)
		}
	}
	for i, s := range tc.servers {
		if i == f {
			continue
		}
		if _, err := s.api.Ready(ctx); err != nil {
			t.Errorf("current server-%d: /v1/ready: %v", i, err)
		}
		if st, err := s.api.Status(ctx); err != nil || st.Halted != "" {
			t.Errorf("current server-%d: /v1/status halted = %q (%v)", i, st.Halted, err)
		}
	}
}
