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
