package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/internal/syncbuf"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// gateFSM holds its Apply of the command "hold" until release is closed.
type gateFSM struct {
	held    chan struct{}
	release chan struct{}
}

func (f *gateFSM) Apply(l *raft.Log) any {
	if string(l.Data) == "hold" {
		close(f.held)
		<-f.release
	}
	return nil
}

func (f *gateFSM) Snapshot() (raft.FSMSnapshot, error) { return gateSnapshot{}, nil }
func (f *gateFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type gateSnapshot struct{}

func (gateSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (gateSnapshot) Release()                          {}

// memNode starts an in-memory node with test timeouts, logging to logs.
func memNode(t *testing.T, fsm raft.FSM, logs *syncbuf.Buffer, tweak func(*Config)) *Node {
	t.Helper()
	cfg := Config{
		NodeID: "n1", InMemory: true,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		BarrierTimeout: 2 * time.Second,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := New(cfg, fsm, hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
	}
}

// A cluster from before IDs whose leader's commit of a new ID times out
// (its state machine is busy) and is retried proposes the same ID again:
// the first entry, committed late, and the retry's agree, and no server
// logs that two clusters were mixed.
func TestClusterIDRetryProposesTheSameID(t *testing.T) {
	logs := &syncbuf.Buffer{}
	fsm := &gateFSM{held: make(chan struct{}), release: make(chan struct{})}
	n := memNode(t, fsm, logs, func(c *Config) {
		// The spare never answers, so the reconciler's own rounds never
		// find every server answering and leave the ID to this test.
		c.Probe = func(context.Context, string, string) (ServerInfo, error) {
			return ServerInfo{}, errors.New("gone")
		}
	})
	// Bootstrapped as a release before IDs did: no new-cluster mark.
	conf := raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: "n1", Address: n.trans.LocalAddr()},
		{Suffrage: raft.Nonvoter, ID: "spare", Address: "127.0.0.1:1"},
	}}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leading", func() bool { _, ok := n.LeaderContext(); return ok })

	go func() { _, _ = n.Apply(context.Background(), []byte("hold")) }()
	<-fsm.held
	answered := []ServerHealth{{Server: Server{ID: "spare"}, Healthy: true, Info: &ServerInfo{ID: "spare"}}}
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		n.settleClusterID(ctx, answered)
		cancel()
	}
	close(fsm.release)
	// A command after both: once it is applied, so are they.
	if _, err := n.Apply(context.Background(), []byte("after")); err != nil {
		t.Fatal(err)
	}

	proposed := regexp.MustCompile(`committing the cluster id: cluster_id=(\S+)`).FindAllStringSubmatch(logs.String(), -1)
	if len(proposed) != 2 {
		t.Fatalf("%d proposals; want the timed-out one and its retry:\n%s", len(proposed), logs)
	}
	if proposed[0][1] != proposed[1][1] {
		t.Errorf("the retry proposed %s after %s", proposed[1][1], proposed[0][1])
	}
	if got := n.ClusterID(); got != proposed[0][1] {
		t.Errorf("cluster id %q; want the proposed %s", got, proposed[0][1])
	}
	if strings.Contains(logs.String(), "names another cluster") {
		t.Errorf("a late commit was logged as two clusters mixed:\n%s", logs)
	}
}

// failIDStore is a stable store that cannot keep the cluster ID.
type failIDStore struct{ raft.StableStore }

func (s failIDStore) Set(k, v []byte) error {
	if bytes.Equal(k, stableKeyClusterID) {
		return errors.New("disk full")
	}
	return s.StableStore.Set(k, v)
}

// A new leader whose barrier passes but whose cluster ID cannot be kept
// says that it is the cluster ID that failed, not the barrier.
func TestCatchUpLogsWhatFailed(t *testing.T) {
	logs := &syncbuf.Buffer{}
	memNode(t, &gateFSM{}, logs, func(c *Config) {
		c.Bootstrap = true
		c.StableStore = failIDStore{raft.NewInmemStore()}
	})
	waitFor(t, "a failed attempt logged", func() bool { return strings.Contains(logs.String(), "retrying before leading") })
	out := logs.String()
	if strings.Contains(out, "barrier failed") || !strings.Contains(out, "committing the cluster id failed; retrying before leading") {
		t.Errorf("the log does not say the cluster id's commit failed:\n%s", out)
	}
	if !strings.Contains(out, "could not keep the id") {
		t.Errorf("the log does not say why:\n%s", out)
	}
}

// TestJoinReason: the local port of a connection, new at each attempt, does
// not make a join error a new reason; anything else does.
func TestJoinReason(t *testing.T) {
	a := errors.New(`cluster: waiting for servers: 1 of bootstrap_expect = 3 voting servers found (x); no foreshape server answered at 10.0.0.2:7576 (cluster: rpc info to 10.0.0.2:7576: read tcp 10.0.0.1:53122->10.0.0.2:7576: read: connection reset by peer)`)
	b := errors.New(`cluster: waiting for servers: 1 of bootstrap_expect = 3 voting servers found (x); no foreshape server answered at 10.0.0.2:7576 (cluster: rpc info to 10.0.0.2:7576: read tcp 10.0.0.1:53180->10.0.0.2:7576: read: connection reset by peer)`)
	if joinReason(a) != joinReason(b) {
		t.Errorf("a new local port makes a new reason:\n%s\n%s", joinReason(a), joinReason(b))
	}
	c := errors.New(`cluster: waiting for servers: 2 of bootstrap_expect = 3 voting servers found (x, y); no foreshape server answered at 10.0.0.2:7576 (cluster: rpc info to 10.0.0.2:7576: read tcp 10.0.0.1:53122->10.0.0.2:7576: read: connection reset by peer)`)
	if joinReason(a) == joinReason(c) {
		t.Error("another server found is not a new reason")
	}
	if got := joinReason(a); !strings.Contains(got, "read tcp 10.0.0.2:7576: read: connection reset by peer") {
		t.Errorf("joinReason = %q", got)
	}
}
