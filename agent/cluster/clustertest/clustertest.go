// Package clustertest builds in-memory Raft clusters of cluster.Node for
// tests: nodes connected pairwise over raft.InmemTransport with in-memory
// stores and tight timeouts, which can be partitioned, healed and stopped.
//
// It is for tests only; it never opens files or sockets.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Timeout bounds every wait of this package. It only catches what never
// happens: waits poll and return as soon as their condition holds, and tests
// run under the race detector on machines loaded many times over (a few
// hundred replicated writes took 5 s at load 22 on 2 cores), so it must not
// measure the machine's speed.
const Timeout = time.Minute

// Cluster is a set of in-memory nodes.
type Cluster struct {
	t     testing.TB
	log   hclog.Logger
	Nodes []*cluster.Node
	FSMs  []raft.FSM
	trans []*raft.InmemTransport

	mu          sync.Mutex
	partitioned map[int]bool
	stopped     map[int]bool
}

// Config returns the node configuration the cluster uses: in memory, with
// 50ms raft timeouts.
func Config(id string) cluster.Config {
	return cluster.Config{
		NodeID:             id,
		InMemory:           true,
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		BarrierTimeout:     Timeout,
	}
}

// New starts n nodes (IDs node0…), each with the FSM newFSM returns, all
// connected, bootstrapped as voters of one cluster; tweak, when not nil,
// adjusts each node's configuration. The nodes close when the test ends.
func New(t testing.TB, n int, newFSM func(i int) raft.FSM, tweak func(i int, c *cluster.Config)) *Cluster {
	t.Helper()
	c := &Cluster{t: t, partitioned: map[int]bool{}, stopped: map[int]bool{}}
	for i := range n {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("node%d", i)))
		c.trans = append(c.trans, tr)
	}
	for i := range c.trans {
		for j := range c.trans {
			if i != j {
				c.trans[i].Connect(c.trans[j].LocalAddr(), c.trans[j])
			}
		}
	}
	var servers []cluster.Server
	for i, tr := range c.trans {
		servers = append(servers, cluster.Server{ID: fmt.Sprintf("node%d", i), Address: string(tr.LocalAddr()), Voter: true})
	}
	c.log = Logger(t)
	// Registered first, so that the nodes already started are closed when
	// a later one fails to start.
	t.Cleanup(c.Close)
	for i := range n {
		cfg := Config(fmt.Sprintf("node%d", i))
		cfg.Transport = c.trans[i]
		cfg.Voters = n
		cfg.Probe = c.probe(i)
		if tweak != nil {
			tweak(i, &cfg)
		}
		fsm := newFSM(i)
		node, err := cluster.New(cfg, fsm, c.log.Named(cfg.NodeID))
		if err != nil {
			t.Fatalf("clustertest: node %d: %v", i, err)
		}
		c.mu.Lock()
		c.Nodes = append(c.Nodes, node)
		c.FSMs = append(c.FSMs, fsm)
		c.mu.Unlock()
	}
	if err := c.Nodes[0].Bootstrap(servers...); err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	return c
}

// AddNode starts one more node, connected to every node but not part of the
// cluster's configuration: add it with the leader's AddVoter or AddNonvoter.
// It returns the node's index.
func (c *Cluster) AddNode(fsm raft.FSM, tweak func(c *cluster.Config)) int {
	c.t.Helper()
	i := len(c.Nodes)
	_, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("node%d", i)))
	c.mu.Lock()
	for j, other := range c.trans {
		if !c.partitioned[j] && !c.stopped[j] {
			tr.Connect(other.LocalAddr(), other)
			other.Connect(tr.LocalAddr(), tr)
		}
	}
	c.trans = append(c.trans, tr)
	c.mu.Unlock()
	cfg := Config(fmt.Sprintf("node%d", i))
	cfg.Transport = tr
	cfg.Probe = c.probe(i)
	if tweak != nil {
		tweak(&cfg)
	}
	node, err := cluster.New(cfg, fsm, c.log.Named(cfg.NodeID))
	if err != nil {
		c.t.Fatalf("clustertest: node %d: %v", i, err)
	}
	c.mu.Lock()
	c.Nodes = append(c.Nodes, node)
	c.FSMs = append(c.FSMs, fsm)
	c.mu.Unlock()
	return i
}

// probe is node from's health check of other nodes: their Info, unless
// either side is partitioned or stopped.
func (c *Cluster) probe(from int) func(ctx context.Context, id, address string) (cluster.ServerInfo, error) {
	return func(ctx context.Context, id, address string) (cluster.ServerInfo, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.partitioned[from] || c.stopped[from] {
			return cluster.ServerInfo{}, fmt.Errorf("clustertest: node%d is cut off", from)
		}
		for i, n := range c.Nodes {
			if string(c.trans[i].LocalAddr()) != address {
				continue
			}
			if c.partitioned[i] || c.stopped[i] {
				return cluster.ServerInfo{}, fmt.Errorf("clustertest: node%d is cut off", i)
			}
			return n.Info(), nil
		}
		return cluster.ServerInfo{}, fmt.Errorf("clustertest: no node at %s", address)
	}
}

// Address returns node i's transport address.
func (c *Cluster) Address(i int) string { return string(c.trans[i].LocalAddr()) }

// Close stops every node still running.
func (c *Cluster) Close() {
	for i := range c.Nodes {
		c.Stop(i)
	}
}

// Stop closes node i, as if its process ended.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	if c.stopped[i] {
		c.mu.Unlock()
		return
	}
	c.stopped[i] = true
	c.mu.Unlock()
	if err := c.Nodes[i].Close(); err != nil {
		c.t.Errorf("clustertest: close node %d: %v", i, err)
	}
	c.trans[i].Close()
	// The others' calls to it then fail at once, as a closed port refuses
	// a connection, instead of each waiting out the in-memory transport's
	// 500 ms timeout: a node closing with a call to it pending (raft
	// waits for its replication streams) took a second or more.
	c.mu.Lock()
	for j, tr := range c.trans {
		if j != i {
			tr.Disconnect(c.trans[i].LocalAddr())
		}
	}
	c.mu.Unlock()
}

// Partition cuts node i off from every other node, both ways.
func (c *Cluster) Partition(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partitioned[i] = true
	for j, tr := range c.trans {
		if j != i {
			c.trans[i].Disconnect(tr.LocalAddr())
			tr.Disconnect(c.trans[i].LocalAddr())
		}
	}
}

// Heal reconnects node i to every node neither partitioned nor stopped.
func (c *Cluster) Heal(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.partitioned, i)
	for j, tr := range c.trans {
		if j != i && !c.partitioned[j] && !c.stopped[j] {
			c.trans[i].Connect(tr.LocalAddr(), tr)
			tr.Connect(c.trans[i].LocalAddr(), c.trans[i])
		}
	}
}

// Leader waits until one of the nodes not excluded leads with its FSM caught
// up (its LeaderContext is live) and returns its index.
func (c *Cluster) Leader(exclude ...int) int {
	c.t.Helper()
	skip := map[int]bool{}
	for _, i := range exclude {
		skip[i] = true
	}
	var found int
	c.Eventually("a leader", func() bool {
		for i, n := range c.Nodes {
			c.mu.Lock()
			gone := c.stopped[i] || skip[i]
			c.mu.Unlock()
			if gone {
				continue
			}
			if _, ok := n.LeaderContext(); ok {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

// Apply applies cmd through the current leader (among the nodes not
// excluded), trying again while leadership moves. A try the log never
// took (not the leader) is simply repeated; a try whose outcome is unknown
// (leadership lost after the entry was appended, or the try's 10 s ran
// out) is repeated too, so cmd may then be applied twice: that is logged,
// for a test that counts applications to explain its failure. An error
// that is the command's (the FSM refused it, a protocol check) fails the
// test at once.
func (c *Cluster) Apply(cmd []byte, exclude ...int) any {
	c.t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		i := c.Leader(exclude...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.Nodes[i].Apply(ctx, cmd)
		cancel()
		switch {
		case err == nil:
			return res
		case time.Now().After(deadline):
			c.t.Fatalf("clustertest: apply: %v", err)
		case errors.Is(err, cluster.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout):
		case errors.Is(err, cluster.ErrLeadershipLost), errors.Is(err, cluster.ErrClosed),
			errors.Is(err, context.DeadlineExceeded):
			c.t.Logf("clustertest: apply through node%d: %v; trying again, so the command may be applied twice", i, err)
		default:
			c.t.Fatalf("clustertest: apply through node%d: %v", i, err)
		}
	}
}

// WaitApplied waits until each listed node (all running nodes when none are
// listed) has applied at least index.
func (c *Cluster) WaitApplied(index uint64, nodes ...int) {
	c.t.Helper()
	if len(nodes) == 0 {
		for i := range c.Nodes {
			c.mu.Lock()
			if !c.stopped[i] {
				nodes = append(nodes, i)
			}
			c.mu.Unlock()
		}
	}
	c.Eventually(fmt.Sprintf("nodes %v applied index %d", nodes, index), func() bool {
		for _, i := range nodes {
			st, err := c.Nodes[i].Status()
			if err != nil || st.AppliedIndex < index {
				return false
			}
		}
		return true
	})
}

// Eventually polls cond every 10ms until it holds, failing the test after
// Timeout.
func (c *Cluster) Eventually(what string, cond func() bool) {
	c.t.Helper()
	Eventually(c.t, what, cond)
}

// Eventually polls cond every 10ms until it holds, failing t after Timeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("clustertest: timed out after %v waiting for %s", Timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logger returns an hclog logger that writes to t.Log while the test runs
// and drops output afterwards (raft goroutines may log while stopping).
func Logger(t testing.TB) hclog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return hclog.New(&hclog.LoggerOptions{Name: "test", Output: w, Level: hclog.Debug})
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
