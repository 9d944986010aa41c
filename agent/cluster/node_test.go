package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/foreshape/foreshape/agent/state"
	"github.com/hashicorp/raft"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*cluster.Config)
		ok    bool
	}{
		{"in memory", func(*cluster.Config) {}, true},
		{"on disk", func(c *cluster.Config) { c.InMemory, c.DataDir, c.BindAddr = false, "/tmp/x", "127.0.0.1:0" }, true},
		{"no id", func(c *cluster.Config) { c.NodeID = "" }, false},
		{"no data dir", func(c *cluster.Config) { c.InMemory, c.BindAddr = false, "127.0.0.1:0" }, false},
		{"no bind address", func(c *cluster.Config) { c.InMemory, c.DataDir = false, "/tmp/x" }, false},
		{"bootstrap expect 1", func(c *cluster.Config) { c.BootstrapExpect = 1 }, true},
		{"bootstrap expect 3 without servers to join", func(c *cluster.Config) { c.BootstrapExpect = 3 }, false},
		{"bootstrap expect 3", func(c *cluster.Config) { c.BootstrapExpect, c.RetryJoin = 3, []string{"10.0.0.1:7576"} }, true},
		{"retry join", func(c *cluster.Config) { c.RetryJoin = []string{"10.0.0.1:7576"} }, true},
		{"bootstrap alone and join", func(c *cluster.Config) { c.Bootstrap, c.RetryJoin = true, []string{"10.0.0.1:7576"} }, false},
		{"more to bootstrap than voters", func(c *cluster.Config) {
			c.BootstrapExpect, c.Voters, c.RetryJoin = 5, 3, []string{"10.0.0.1:7576"}
		}, false},
		{"voters", func(c *cluster.Config) { c.Voters = 10 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster.Config{NodeID: "a", InMemory: true}
			tt.tweak(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v; want ok=%v", err, tt.ok)
			}
		})
	}
}

func waitLeading(t *testing.T, n *cluster.Node) context.Context {
	t.Helper()
	var ctx context.Context
	clustertest.Eventually(t, "leadership", func() bool {
		c, ok := n.LeaderContext()
		ctx = c
		return ok
	})
	return ctx
}

func apply(t *testing.T, n *cluster.Node, cmd []byte) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.Timeout)
	defer cancel()
	res, err := n.Apply(ctx, cmd)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

// TestSingleNodeRestart runs the real thing: TCP transport on loopback,
// raft-boltdb and file snapshots in a data dir, the state FSM. State written
// before a snapshot and after it survives a restart.
func TestSingleNodeRestart(t *testing.T) {
	dir := t.TempDir()
	log := clustertest.Logger(t)
	cfg := cluster.Config{
		NodeID:             "server-1",
		BindAddr:           "127.0.0.1:0",
		DataDir:            dir,
		Bootstrap:          true,
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
	}
	key := state.Key{Locality: "dc1/web", Metric: "cpu"}
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	batch := func(minute int) []byte {
		return state.Encode(state.AppendSamples{Step: time.Minute, Samples: []state.Sample{
			{Key: key, Time: t0.Add(time.Duration(minute) * time.Minute), Value: float64(minute)},
		}})
	}

	fsm1, _ := state.NewFSM(state.Config{})
	n1, err := cluster.New(cfg, fsm1, log.Named("first"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n1.Close() }) // a failure before its Close below
	waitLeading(t, n1)
	for m := range 5 {
		res := apply(t, n1, batch(m))
		if r, ok := res.(state.Result); !ok || r.Applied != 1 {
			t.Fatalf("apply result %#v; want one sample applied", res)
		}
	}
	if err := n1.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for m := 5; m < 8; m++ {
		apply(t, n1, batch(m))
	}
	// An FSM error value comes back as the error.
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.Timeout)
	defer cancel()
	if _, err := n1.Apply(ctx, []byte{1, byte(state.TypeMarkStale), 0xff}); !errors.Is(err, state.ErrMalformedPayload) {
		t.Errorf("malformed command: %v; want state.ErrMalformedPayload", err)
	}
	st, err := n1.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "Leader" || st.LeaderID != "server-1" || len(st.Servers) != 1 || !st.Servers[0].Voter || !st.Servers[0].Leader {
		t.Errorf("status %+v; want the only voter, leading", st)
	}
	// Bootstrap configuration, the leader's no-op, 8 batches, 1 rejected.
	if st.LastIndex < 11 || st.CommitIndex != st.LastIndex {
		t.Errorf("status indexes %+v; want at least 11 entries, all committed", st)
	}
	clustertest.Eventually(t, "applied index to reach the last index", func() bool {
		s, err := n1.Status()
		return err == nil && s.AppliedIndex == st.LastIndex
	})
	addr := st.Address
	want, _ := fsm1.Range(key, time.Minute, t0, t0.Add(8*time.Minute))
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n1.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := n1.Apply(ctx, batch(9)); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Apply after Close: %v; want ErrClosed", err)
	}

	// Restart on the same data dir and address with an empty FSM.
	cfg.BindAddr = addr
	fsm2, _ := state.NewFSM(state.Config{})
	n2, err := cluster.New(cfg, fsm2, log.Named("second"))
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	waitLeading(t, n2)
	got, err := fsm2.Range(key, time.Minute, t0, t0.Add(8*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Mean, want.Mean) || !slices.Equal(got.Mean, []float64{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("after restart: %v; want %v", got.Mean, want.Mean)
	}
	apply(t, n2, batch(8))
	if p, ok := fsm2.Latest(key); !ok || p.Mean != 8 {
		t.Errorf("latest after restart and apply: %+v", p)
	}
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	cfg := cluster.Config{NodeID: "a", BindAddr: "127.0.0.1:0", DataDir: dir, LockTimeout: 100 * time.Millisecond}
	n, err := cluster.New(cfg, &listFSM{}, clustertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// A second open must fail after the lock timeout rather than hang,
	// and say that the data dir is in use (not "open raft.db: timeout").
	n2, err := cluster.New(cfg, &listFSM{}, clustertest.Logger(t))
	if err == nil {
		n2.Close()
		t.Fatal("a second node opened a data dir in use")
	}
	if want := "data_dir " + dir + " is in use"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
}

// TestDamagedRaftStore: a server whose raft.db cannot be read (both meta
// pages invalid, as after a torn write or an operator's mistake) refuses to
// start with an error that names the file and says how to bring the server
// back, not "open raft.db: invalid database".
func TestDamagedRaftStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "raft.db")
	if err := os.WriteFile(path, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := cluster.New(cluster.Config{NodeID: "a", BindAddr: "127.0.0.1:0", DataDir: dir}, &listFSM{}, clustertest.Logger(t))
	if err == nil {
		n.Close()
		t.Fatal("a server started on a damaged raft.db")
	}
	for _, want := range []string{path + " is damaged", "move data_dir " + dir + " aside"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q, want it to say %q", err, want)
		}
	}
}

// TestDamagedSnapshots: a server none of whose snapshots can be read
// refuses to start with an error that names where they are and how to
// bring the server back, not "start raft: failed to load any existing
// snapshots".
func TestDamagedSnapshots(t *testing.T) {
	dir := t.TempDir()
	cfg := cluster.Config{
		NodeID: "a", BindAddr: "127.0.0.1:0", DataDir: dir, Bootstrap: true,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
	}
	fsm, _ := state.NewFSM(state.Config{})
	n, err := cluster.New(cfg, fsm, clustertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() }) // a failure before its Close below
	waitLeading(t, n)
	apply(t, n, state.Encode(state.SetQueuePaused{Paused: true}))
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	n.Close()
	states, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(states) == 0 {
		t.Fatal("no snapshot written")
	}
	for _, p := range states {
		if err := os.WriteFile(p, []byte("damaged"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fsm2, _ := state.NewFSM(state.Config{})
	n2, err := cluster.New(cfg, fsm2, clustertest.Logger(t))
	if err == nil {
		n2.Close()
		t.Fatal("a server started with no readable snapshot")
	}
	for _, want := range []string{"snapshots in " + filepath.Join(dir, "snapshots") + " cannot be read", "move data_dir " + dir + " aside"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q, want it to say %q", err, want)
		}
	}
}

func TestReplicationAndLeaderLoss(t *testing.T) {
	fsms := make([]*listFSM, 3)
	c := clustertest.New(t, 3, func(i int) raft.FSM { fsms[i] = &listFSM{}; return fsms[i] }, nil)
	var want []string
	for i := range 10 {
		v := fmt.Sprintf("v%d", i)
		c.Apply([]byte(v))
		want = append(want, v)
	}
	st, _ := c.Nodes[c.Leader()].Status()
	c.WaitApplied(st.LastIndex)
	// Raft counts an entry applied as it hands it to the FSM, which
	// applies it on its own goroutine: give each FSM the time to catch up.
	for i, f := range fsms {
		waitValues(t, f, want)
		if got := f.Values(); !slices.Equal(got, want) {
			t.Errorf("node %d: %v; want %v", i, got, want)
		}
	}

	old := c.Leader()
	c.Stop(old)
	next := c.Leader(old)
	if next == old {
		t.Fatal("no new leader")
	}
	for i := 10; i < 15; i++ {
		v := fmt.Sprintf("v%d", i)
		c.Apply([]byte(v), old)
		want = append(want, v)
	}
	if got := fsms[c.Leader(old)].Values(); !slices.Equal(got, want) {
		t.Errorf("new leader: %v; want %v (nothing committed lost)", got, want)
	}
}

func TestFollowerApplyNotLeader(t *testing.T) {
	c := clustertest.New(t, 3, func(int) raft.FSM { return &listFSM{} }, nil)
	l := c.Leader()
	c.Apply([]byte("x"))
	f := (l + 1) % 3
	c.WaitApplied(2, f) // bootstrap configuration and the command
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.Nodes[f].Apply(ctx, []byte("y"))
	var nl *cluster.NotLeaderError
	if !errors.Is(err, cluster.ErrNotLeader) || !errors.As(err, &nl) {
		t.Fatalf("follower Apply: %v; want a NotLeaderError", err)
	}
	if nl.LeaderAddress != c.Address(l) || nl.LeaderID != fmt.Sprintf("node%d", l) {
		t.Errorf("NotLeaderError %+v; want leader node%d at %s", nl, l, c.Address(l))
	}
	if _, ok := c.Nodes[f].LeaderContext(); ok {
		t.Error("a follower has a leader context")
	}
}

func TestApplyRespectsContext(t *testing.T) {
	fsm := &listFSM{block: make(chan struct{})}
	c := clustertest.New(t, 1, func(int) raft.FSM { return fsm }, nil)
	l := c.Leader()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Nodes[l].Apply(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a cancelled context: %v; want context.Canceled", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := c.Nodes[l].Apply(ctx, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Apply past its deadline: %v; want context.DeadlineExceeded", err)
	}
	if _, err := c.Nodes[l].Apply(context.Background(), []byte("reject")); !errors.Is(err, errRejected) {
		t.Errorf("Apply of a command the FSM rejects: %v; want its error", err)
	}
	// The context expires while the FSM is held up: Apply returns, and the
	// command is still applied afterwards.
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Nodes[l].Apply(ctx, []byte("block")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Apply while the FSM is blocked: %v; want context.DeadlineExceeded", err)
	}
	close(fsm.block)
	c.Eventually("the blocked command to apply", func() bool { return slices.Contains(fsm.Values(), "block") })
}

// TestCloseWhileTheBarrierWaits closes a new leader whose catch-up barrier
// is committed but not yet applied, the FSM being held up by an earlier
// entry: raft answers such a barrier only once the FSM applies it, and
// drops it when it stops first, so Close waited for catchUp for good (seen
// in CI, where the package's watchdog stopped the tests after 10 minutes).
func TestCloseWhileTheBarrierWaits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := cluster.Config{
		NodeID: "server-1", BindAddr: "127.0.0.1:0", DataDir: dir, Bootstrap: true,
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
	}
	n1, err := cluster.New(cfg, &listFSM{}, clustertest.Logger(t).Named("first"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n1.Close() })
	waitLeading(t, n1)
	apply(t, n1, []byte("block"))
	st, err := n1.Status()
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}

	// Restarted, the leader re-applies the log from its start: the FSM
	// holds at "block", and the barrier waits behind it.
	fsm := &listFSM{block: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(fsm.block)
		}
	}
	cfg.BindAddr = st.Address
	n2, err := cluster.New(cfg, fsm, clustertest.Logger(t).Named("second"))
	if err != nil {
		release()
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Close() })
	t.Cleanup(release) // first: a Close still waiting then ends
	// The no-op of the new term and the barrier, both committed.
	clustertest.Eventually(t, "the barrier to commit", func() bool {
		s, err := n2.Status()
		return err == nil && s.State == "Leader" && s.LastIndex >= st.LastIndex+2 && s.CommitIndex == s.LastIndex
	})
	if _, ok := n2.LeaderContext(); ok {
		t.Fatal("leading before the FSM applied the earlier entries")
	}
	closed := make(chan error, 1)
	go func() { closed <- n2.Close() }()
	select {
	case err := <-closed:
		// Raft cannot stop while its FSM is held up: Close stops waiting
		// for it after a while and says so.
		if err == nil || !strings.Contains(err.Error(), "did not stop") {
			t.Errorf("Close: %v; want raft not stopping in time", err)
		}
	case <-time.After(cluster.CloseWait + clustertest.Timeout):
		t.Fatalf("Close did not return within %s while a new leader's barrier waited", cluster.CloseWait+clustertest.Timeout)
	}
}

// leaderLog records RunLeaderLoop terms per node.
type leaderLog struct {
	mu     sync.Mutex
	starts map[int]int
	ends   map[int]int
}

func (l *leaderLog) get(i int) (starts, ends int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.starts[i], l.ends[i]
}

func TestPartitionLeaderContextAndCatchUp(t *testing.T) {
	fsms := make([]*listFSM, 3)
	c := clustertest.New(t, 3, func(i int) raft.FSM { fsms[i] = &listFSM{}; return fsms[i] }, nil)

	ll := &leaderLog{starts: map[int]int{}, ends: map[int]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.RunLeaderLoop(ctx, func(lctx context.Context) {
				ll.mu.Lock()
				ll.starts[i]++
				ll.mu.Unlock()
				<-lctx.Done()
				ll.mu.Lock()
				ll.ends[i]++
				ll.mu.Unlock()
			})
		}()
	}
	defer func() { cancel(); wg.Wait() }()

	old := c.Leader()
	oldCtx, ok := c.Nodes[old].LeaderContext()
	if !ok {
		t.Fatal("leader lost its context at once")
	}
	c.Eventually("the leader loop to start", func() bool { s, _ := ll.get(old); return s >= 1 })
	c.Apply([]byte("before"))

	c.Partition(old)
	c.Eventually("the old leader's context to be cancelled", func() bool { return oldCtx.Err() != nil })
	c.Eventually("the old leader's loop to end", func() bool { s, e := ll.get(old); return e == s })
	// Whoever leads now: the first new leader can step down under load
	// before its loop starts.
	c.Eventually("the new leader's loop to start", func() bool { s, _ := ll.get(c.Leader(old)); return s >= 1 })
	for i := range 5 {
		c.Apply([]byte(fmt.Sprintf("during %d", i)), old)
	}
	if len(fsms[old].Values()) != 1 {
		t.Errorf("partitioned node applied %v; want only the entry before the partition", fsms[old].Values())
	}

	c.Heal(old)
	st, _ := c.Nodes[c.Leader()].Status()
	c.WaitApplied(st.LastIndex, old)
	want := []string{"before", "during 0", "during 1", "during 2", "during 3", "during 4"}
	// Raft counts an entry applied as it hands it to the FSM, which
	// applies it on its own goroutine: give the FSM the time to catch up.
	waitValues(t, fsms[old], want)
	if got := fsms[old].Values(); !slices.Equal(got, want) {
		t.Errorf("healed node: %v; want %v", got, want)
	}
	if _, ok := c.Nodes[old].LeaderContext(); ok && c.Leader() != old {
		t.Error("the healed node still holds a leader context while another leads")
	}
}

func TestRunLeaderLoopReturns(t *testing.T) {
	c := clustertest.New(t, 1, func(int) raft.FSM { return &listFSM{} }, nil)
	n := c.Nodes[c.Leader()]

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- n.RunLeaderLoop(ctx, func(lctx context.Context) { <-lctx.Done() })
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("RunLeaderLoop after cancel: %v; want context.Canceled", err)
	}

	// A function that returns early is not called again in the same term.
	var calls2 atomic.Int32
	errc2 := make(chan error, 1)
	go func() {
		errc2 <- n.RunLeaderLoop(context.Background(), func(context.Context) { calls2.Add(1) })
	}()
	c.Eventually("the loop to run once", func() bool { return calls2.Load() == 1 })
	c.Apply([]byte("x")) // activity within the same term
	c.Stop(0)
	if err := <-errc2; !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("RunLeaderLoop after Close: %v; want ErrClosed", err)
	}
	if n := calls2.Load(); n != 1 {
		t.Errorf("fn called %d times in one term; want 1", n)
	}
}

func TestNonvoterJoinsAndStatus(t *testing.T) {
	c := clustertest.New(t, 3, func(int) raft.FSM { return &listFSM{} }, nil)
	c.Apply([]byte("a"))
	extra := &listFSM{}
	i := c.AddNode(extra, nil)
	addNonvoter(t, c, fmt.Sprintf("node%d", i), c.Address(i))
	l := c.Leader()
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.Timeout)
	defer cancel()
	c.Apply([]byte("b"))
	c.Eventually("the non-voter to replicate", func() bool { return slices.Equal(extra.Values(), []string{"a", "b"}) })

	st, err := c.Nodes[i].Status()
	if err != nil {
		t.Fatal(err)
	}
	voters, nonvoters, leaders := 0, 0, 0
	for _, s := range st.Servers {
		if s.Voter {
			voters++
		} else {
			nonvoters++
		}
		if s.Leader {
			leaders++
		}
	}
	if voters != 3 || nonvoters != 1 || leaders != 1 || st.State != "Follower" || st.LeaderAddress != c.Address(l) {
		t.Errorf("non-voter status %+v; want 3 voters, 1 non-voter, leader %s", st, c.Address(l))
	}
	if st.LastContact.IsZero() {
		t.Error("follower status without last contact")
	}
	if err := c.Nodes[i].AddVoter(ctx, "x", "y"); !errors.Is(err, cluster.ErrNotLeader) {
		t.Errorf("AddVoter on a follower: %v; want ErrNotLeader", err)
	}
	if err := c.Nodes[l].RemoveServer(ctx, fmt.Sprintf("node%d", i)); err != nil {
		t.Errorf("RemoveServer: %v", err)
	}
}

func TestDevModeAndAdvertise(t *testing.T) {
	tests := []struct {
		name    string
		cfg     cluster.Config
		addr    func(string) bool
		started string // what the "raft started" line says of the transport
	}{
		{"in memory, in-process transport", cluster.Config{NodeID: "dev", InMemory: true, Bootstrap: true},
			func(a string) bool { return a != "" }, `address="in-memory (dev)"`},
		{"in memory over TCP with an advertised address", cluster.Config{NodeID: "dev", InMemory: true, Bootstrap: true,
			BindAddr: "127.0.0.1:0", AdvertiseAddr: "127.0.0.1:17576"},
			func(a string) bool { return a == "127.0.0.1:17576" }, "address=127.0.0.1:17576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
			fsm := &listFSM{}
			logs := &logBuffer{}
			n, err := cluster.New(cfg, fsm, teeLogger(t, "dev", logs))
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			waitLeading(t, n)
			apply(t, n, []byte("x"))
			if line := logLine(logs.String(), "raft started"); !strings.Contains(line, tt.started) {
				t.Errorf("raft started line %q; want it to say %s", line, tt.started)
			}
			st, err := n.Status()
			if err != nil {
				t.Fatal(err)
			}
			if !tt.addr(st.Address) || len(st.Servers) != 1 || st.Servers[0].Address != st.Address || st.LeaderAddress != st.Address {
				t.Errorf("status %+v: unexpected addresses", st)
			}
			if got := fsm.Values(); len(got) != 1 {
				t.Errorf("fsm %v; want [x]", got)
			}
		})
	}
}

// TestLeaderWorkSeesCommittedState checks the barrier contract: when leader
// work starts on a new leader, its FSM already holds every entry committed
// under the previous leader.
func TestLeaderWorkSeesCommittedState(t *testing.T) {
	fsms := make([]*listFSM, 3)
	c := clustertest.New(t, 3, func(i int) raft.FSM { fsms[i] = &listFSM{}; return fsms[i] }, nil)
	old := c.Leader()
	for i := range 30 {
		c.Apply([]byte(fmt.Sprintf("v%d", i)))
	}
	seen := make(chan int, 3)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		if i == old {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.RunLeaderLoop(ctx, func(lctx context.Context) {
				seen <- len(fsms[i].Values())
				<-lctx.Done()
			})
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	c.Partition(old)
	select {
	case n := <-seen:
		if n < 30 {
			t.Errorf("leader work started with %d entries applied; want all 30 committed", n)
		}
	case <-time.After(clustertest.Timeout):
		t.Fatal("no new leader started its work")
	}
}

// TestHalfWrittenSnapshotsRemoved: a server killed while writing a
// snapshot leaves its NAME.tmp directory behind, which raft's store skips
// and never removes (the crash soak found three after one run). Started
// again on its data dir, the server removes it, keeps the complete
// snapshot and restores from it.
func TestHalfWrittenSnapshotsRemoved(t *testing.T) {
	dir := t.TempDir()
	cfg := cluster.Config{
		NodeID: "a", BindAddr: "127.0.0.1:0", DataDir: dir, Bootstrap: true,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
	}
	fsm, _ := state.NewFSM(state.Config{})
	n, err := cluster.New(cfg, fsm, clustertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() }) // a failure before its Close below
	waitLeading(t, n)
	apply(t, n, state.Encode(state.SetQueuePaused{Paused: true}))
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	n.Close()
	tmp := filepath.Join(dir, "snapshots", "2-99-1796190000000.tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "state.bin"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	fsm2, _ := state.NewFSM(state.Config{})
	n2, err := cluster.New(cfg, fsm2, clustertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("%s still there after the restart (%v)", tmp, err)
	}
	if complete, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin")); len(complete) != 1 {
		t.Errorf("snapshots after the restart: %v; want the complete one", complete)
	}
	if !fsm2.Act().Paused {
		t.Error("the restarted server's state does not have the entry before its snapshot")
	}
}

// logLine is the first line of logs that contains msg.
func logLine(logs, msg string) string {
	for line := range strings.Lines(logs) {
		if strings.Contains(line, msg) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
