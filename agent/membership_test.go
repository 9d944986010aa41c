package agent

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/state"
)

// TestMembershipFailureLoggedOnce: a leader whose membership updates keep
// failing (here its own server description, which it writes on its first
// health round and tries again each round, a second apart) says so once,
// not a line a round, and once when they work again.
func TestMembershipFailureLoggedOnce(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Name: "members", Level: hclog.Info, Output: io.MultiWriter(&logs, testWriter{t})})
	cfg := serverConfig(t, t.TempDir())
	a, err := New(cfg, Options{Logger: log, Policies: devPolicies(t), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	var tries atomic.Int32
	fail.Store(true)
	a.applyMember = func(ctx context.Context, c state.Command) (state.Result, error) {
		tries.Add(1)
		if fail.Load() {
			return state.Result{}, errors.New("raft: apply timed out")
		}
		return applier{a.node}.Apply(ctx, c)
	}
	runInBackground(t, a.Run, a.Close)
	eventually(t, 30*time.Second, "three failed membership rounds", func() bool { return tries.Load() >= 3 })
	if got := logs.count("membership update failed"); got != 1 {
		t.Errorf("%d membership failures logged over %d failed rounds; want 1 (a streak)", got, tries.Load())
	}
	fail.Store(false)
	eventually(t, 10*time.Second, "the log to say membership updates work again", func() bool {
		return logs.count("membership updates work again") == 1
	})
	eventually(t, 10*time.Second, "the server's description replicated", func() bool { return len(a.fsm.Servers()) == 1 })
	if got := logs.count("membership update failed"); got != 1 {
		t.Errorf("%d membership failures logged; want 1", got)
	}
}

// TestServerNamedBeforeItsDescriptionIsReplicated: a server whose own
// description is not in the replicated membership yet (here every
// membership update fails; a new server that has not applied the log is
// the same) still shows its name, HTTP address and version in its status
// and in the Raft configuration it answers: it knows them itself. Before,
// both showed a nameless peer.
func TestServerNamedBeforeItsDescriptionIsReplicated(t *testing.T) {
	t.Parallel()
	cfg := serverConfig(t, t.TempDir())
	a, err := New(cfg, Options{Logger: hclog.NewNullLogger(), Policies: devPolicies(t), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var tries atomic.Int32
	a.applyMember = func(context.Context, state.Command) (state.Result, error) {
		tries.Add(1)
		return state.Result{}, errors.New("raft: apply timed out")
	}
	runInBackground(t, a.Run, a.Close)
	eventually(t, 30*time.Second, "two failed membership rounds", func() bool { return tries.Load() >= 2 })
	if n := len(a.fsm.Servers()); n != 0 {
		t.Fatalf("%d servers replicated; the test needs none", n)
	}
	st := a.Status(context.Background())
	if len(st.Peers) != 1 || st.Peers[0].Name != cfg.Name || st.Peers[0].HTTPAddress == "" || st.Peers[0].Version != "test" {
		t.Errorf("status peers %+v; want this server named %q with its HTTP address and version", st.Peers, cfg.Name)
	}
	rc, err := a.RaftConfiguration(context.Background())
	if err != nil || len(rc.Servers) != 1 || rc.Servers[0].Name != cfg.Name || rc.Servers[0].HTTPAddress == "" {
		t.Errorf("raft configuration %+v, %v; want this server named %q with its HTTP address", rc.Servers, err, cfg.Name)
	}
}
