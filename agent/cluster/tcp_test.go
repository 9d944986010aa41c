package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
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
	"github.com/foreshape/foreshape/internal/testpki"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// registry is the address book a test's servers discover each other in,
// standing in for retry_join addresses or a Consul lookup.
type registry struct {
	mu    sync.Mutex
	addrs []string
}

func (r *registry) add(a string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = append(r.addrs, a)
}

func (r *registry) discover(context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.addrs), nil
}

// tcpServer starts a server on loopback TCP with its state in dir, short
// timeouts, and its ID from LoadOrCreateNodeID. The Raft timeouts leave a
// loaded test machine (make test runs every package at once on two cores,
// under the race detector) room to schedule heartbeats: at 100 ms a leader
// lost its lease now and then mid-test and the applies the test makes
// through it failed.
func tcpServer(t *testing.T, dir string, reg *registry, tweak func(*cluster.Config)) (*cluster.Node, *listFSM) {
	t.Helper()
	return tcpServerLog(t, dir, reg, tweak, clustertest.Logger(t).Named(filepath.Base(dir)))
}

// fastTCP is the configuration of a server over TCP on loopback with
// timings a test can wait out: half-second elections and leases, retries
// and reconciliations every 50 ms, nothing removed; joining through reg.
func fastTCP(id, name, bind, dir string, reg *registry) cluster.Config {
	return cluster.Config{
		NodeID: id, Name: name, BindAddr: bind, DataDir: dir, Discover: reg.discover,
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		RetryInterval:      50 * time.Millisecond,
		ReconcileInterval:  50 * time.Millisecond,
		RemoveAfter:        -1,
	}
}

// tcpServerLog is tcpServer logging to logger.
func tcpServerLog(t *testing.T, dir string, reg *registry, tweak func(*cluster.Config), logger hclog.Logger) (*cluster.Node, *listFSM) {
	t.Helper()
	id, err := cluster.LoadOrCreateNodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastTCP(id, filepath.Base(dir), "127.0.0.1:0", dir, reg)
	cfg.BootstrapExpect, cfg.PromoteAfter = 3, 2*time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	fsm := &listFSM{}
	n, err := cluster.New(cfg, fsm, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	st, err := n.Status()
	if err != nil {
		t.Fatal(err)
	}
	reg.add(st.Address)
	return n, fsm
}

// leaderIndex waits for one of nodes to lead and returns its index (nodes
// is read on every try: a restarted server's slot may be replaced).
func leaderIndex(t *testing.T, nodes []*cluster.Node) int {
	t.Helper()
	found := -1
	clustertest.Eventually(t, "a leader", func() bool {
		for i, n := range nodes {
			if _, ok := n.LeaderContext(); ok {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

// leaderOf waits until one of nodes leads and returns it.
func leaderOf(t *testing.T, nodes ...*cluster.Node) *cluster.Node {
	t.Helper()
	var l *cluster.Node
	clustertest.Eventually(t, "a leader", func() bool {
		for _, n := range nodes {
			if _, ok := n.LeaderContext(); ok {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// applyToLeader applies cmd on whichever of nodes leads, as a client
// that follows the leader does: a node that answers it no longer leads
// (leadership can move when a loaded machine delays a heartbeat) refused
// the command before it reached the log, so it is sent again to the
// leader then. It returns the node that applied it.
func applyToLeader(t *testing.T, nodes []*cluster.Node, cmd []byte) *cluster.Node {
	t.Helper()
	deadline := time.Now().Add(clustertest.Timeout)
	for {
		l := leaderOf(t, nodes...)
		ctx, cancel := context.WithTimeout(context.Background(), clustertest.Timeout)
		_, err := l.Apply(ctx, cmd)
		cancel()
		if err == nil {
			return l
		}
		if !errors.Is(err, cluster.ErrNotLeader) || time.Now().After(deadline) {
			t.Fatalf("apply: %v", err)
		}
		t.Logf("apply: %v; sending it to the leader now", err)
	}
}

// applyAll applies every one of cmds through whichever of nodes leads,
// eight at a time, sending each again to the leader of the moment as
// applyToLeader does, and also one whose leader lost its leadership
// before it knew the outcome: that one may then be applied twice, so
// applyAll is for tests that count entries, not what they hold. Raft
// stores and sends the commands in batches, where one after another each
// waited for its own disk sync on every server: 300 take about a second
// on a loaded machine, where TestSnapshotSendLogsNoError, writing 600 one
// by one, took 9 s. The order they commit in is not theirs. It returns
// the node that applied the last to finish.
func applyAll(t *testing.T, nodes []*cluster.Node, cmds [][]byte) *cluster.Node {
	t.Helper()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		last   *cluster.Node
		failed error
	)
	leading := func() *cluster.Node {
		for _, n := range nodes {
			if _, ok := n.LeaderContext(); ok {
				return n
			}
		}
		return nil
	}
	deadline := time.Now().Add(clustertest.Timeout)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(cmds); i = int(next.Add(1)) - 1 {
				for {
					mu.Lock()
					stop := failed != nil
					mu.Unlock()
					if stop {
						return
					}
					var err error
					if l := leading(); l == nil {
						err = cluster.ErrNotLeader
						time.Sleep(10 * time.Millisecond)
					} else {
						ctx, cancel := context.WithTimeout(context.Background(), clustertest.Timeout)
						_, err = l.Apply(ctx, cmds[i])
						cancel()
						if err == nil {
							mu.Lock()
							last = l
							mu.Unlock()
							break
						}
					}
					again := errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrLeadershipLost)
					if !again || time.Now().After(deadline) {
						mu.Lock()
						if failed == nil {
							failed = fmt.Errorf("apply %q: %w", cmds[i], err)
						}
						mu.Unlock()
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	return last
}

// addNonvoter adds a server as a nonvoter through whichever node leads
// (among those not excluded). Under load a delayed heartbeat can move
// leadership between two steps of a test: a change refused as "not the
// leader" never reached the log, and one whose leader stepped down before
// it committed (or that did not commit in time) may or may not be in it;
// adding the same server again leaves it as it is, so asking the new
// leader is safe either way.
func addNonvoter(t *testing.T, c *clustertest.Cluster, id, addr string, exclude ...int) {
	t.Helper()
	onLeader(t, c, "add nonvoter "+id, func(ctx context.Context, n *cluster.Node) error { return n.AddNonvoter(ctx, id, addr) }, exclude...)
}

// onLeader runs fn on the current leader (among the nodes not excluded),
// asking the leader of the moment again while leadership moves under it
// (not the leader, leadership lost, a call that timed out): under load a
// leader may step down between a test's steps.
func onLeader(t *testing.T, c *clustertest.Cluster, what string, fn func(context.Context, *cluster.Node) error, exclude ...int) {
	t.Helper()
	deadline := time.Now().Add(clustertest.Timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := fn(ctx, c.Nodes[c.Leader(exclude...)])
		cancel()
		if err == nil {
			return
		}
		retry := errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrLeadershipLost) || errors.Is(err, context.DeadlineExceeded)
		if !retry || time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %v; asking the leader again", what, err)
	}
}

// suffrage returns the configuration as "voter"/"nonvoter" by server ID.
func suffrage(t *testing.T, n *cluster.Node) map[string]string {
	t.Helper()
	st, err := n.Status()
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, s := range st.Servers {
		out[s.ID] = map[bool]string{true: "voter", false: "nonvoter"}[s.Voter]
	}
	return out
}

func nodeID(t *testing.T, n *cluster.Node) string {
	t.Helper()
	return n.Info().ID
}

// TestTCPBootstrapJoinPromoteRejoin runs the cluster's life on loopback
// TCP with raft-boltdb: three servers find each other and bootstrap; a
// fourth joins as a non-voter; when a voter dies, the fourth is promoted in
// its place and the dead one demoted; the dead one comes back at a new
// address, rejoins, and catches up from a snapshot plus the log after it.
func TestTCPBootstrapJoinPromoteRejoin(t *testing.T) {
	t.Parallel()
	reg := &registry{}
	root := t.TempDir()
	var nodes []*cluster.Node
	snapOften := func(c *cluster.Config) {
		c.SnapshotThreshold, c.SnapshotInterval, c.TrailingLogs = 4, 100*time.Millisecond, 2
	}
	for i := range 3 {
		n, _ := tcpServer(t, filepath.Join(root, fmt.Sprintf("s%d", i)), reg, snapOften)
		nodes = append(nodes, n)
	}
	l := leaderOf(t, nodes...)
	clustertest.Eventually(t, "three voters", func() bool {
		s := suffrage(t, l)
		return len(s) == 3 && s[nodeID(t, nodes[0])] == "voter" && s[nodeID(t, nodes[1])] == "voter" && s[nodeID(t, nodes[2])] == "voter"
	})
	for i := range 5 {
		l = applyToLeader(t, nodes, []byte(fmt.Sprintf("v%d", i)))
	}

	// A fourth server finds the cluster and joins as a non-voter.
	n4, f4 := tcpServer(t, filepath.Join(root, "s3"), reg, snapOften)
	nodes = append(nodes, n4)
	id4 := nodeID(t, n4)
	clustertest.Eventually(t, "the fourth server to join as a non-voter", func() bool {
		return suffrage(t, l)[id4] == "nonvoter"
	})
	clustertest.Eventually(t, "the fourth server to replicate", func() bool { return len(f4.Values()) == 5 })

	// A voter other than the leader dies: the non-voter replaces it.
	var dead int
	for i, n := range nodes[:3] {
		if n != l {
			dead = i
			break
		}
	}
	deadID := nodeID(t, nodes[dead])
	deadDir := filepath.Join(root, fmt.Sprintf("s%d", dead))
	nodes[dead].Close()
	clustertest.Eventually(t, "the non-voter promoted and the dead voter demoted", func() bool {
		s := suffrage(t, l)
		return s[id4] == "voter" && s[deadID] == "nonvoter"
	})
	want := []string{"v0", "v1", "v2", "v3", "v4"}
	live := slices.Delete(slices.Clone(nodes), dead, dead+1)
	for i := range 20 {
		v := fmt.Sprintf("after%d", i)
		l = applyToLeader(t, live, []byte(v))
		want = append(want, v)
	}
	time.Sleep(300 * time.Millisecond) // a snapshot or two compact the log

	// The dead server restarts at a new address (same data dir, same ID)
	// and catches up.
	back, fback := tcpServer(t, deadDir, reg, snapOften)
	if nodeID(t, back) != deadID {
		t.Fatalf("restarted with id %s; want %s from its data dir", nodeID(t, back), deadID)
	}
	st, _ := back.Status()
	clustertest.Eventually(t, "the restarted server at its new address in the configuration", func() bool {
		ls, err := l.Status()
		if err != nil {
			return false
		}
		for _, s := range ls.Servers {
			if s.ID == deadID {
				return s.Address == st.Address
			}
		}
		return false
	})
	clustertest.Eventually(t, "the restarted server to catch up", func() bool {
		return slices.Equal(fback.Values(), want)
	})
	if s := suffrage(t, l); s[deadID] != "nonvoter" || len(s) != 4 {
		t.Errorf("configuration %v; want the restarted server as a spare non-voter among 4", s)
	}
}

// TestJoinSaysWhoDidNotAnswer: a server whose retry_join names addresses
// where no foreshape server answers (an HTTP port given for the Raft port,
// a host that is down) says which ones, and why, in its join error.
func TestJoinSaysWhoDidNotAnswer(t *testing.T) {
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	down := closedAddr(t)
	wrong := strings.TrimPrefix(web.URL, "http://")
	n, _ := tcpServer(t, t.TempDir(), &registry{}, func(c *cluster.Config) {
		c.Discover = nil
		c.RetryJoin = []string{wrong, down}
	})
	deadline := time.Now().Add(10 * time.Second)
	for n.JoinError() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	err := n.JoinError()
	if err == nil {
		t.Fatal("no join error while no server answers")
	}
	t.Logf("join error: %v", err)
	for _, want := range []string{"1 of bootstrap_expect = 3", "no foreshape server answered at", wrong + " (", down + " (",
		"is " + wrong + " the Raft port"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("join error %q, want it to say %q", err, want)
		}
	}
}

// TestJoinSaysTheLookupFailed: a server waiting for bootstrap_expect
// servers whose lookup fails (retry_join "provider=consul" with Consul
// down, or its ACLs hiding servers) says so in its join error: it said only
// "1 of bootstrap_expect = 3 voting servers found", with nothing on why;
// the addresses a lookup found before it failed are asked too.
func TestJoinSaysTheLookupFailed(t *testing.T) {
	down := closedAddr(t)
	n, _ := tcpServer(t, t.TempDir(), &registry{}, func(c *cluster.Config) {
		c.Discover = func(context.Context) ([]string, error) {
			// What a lookup found before it failed in part is tried too.
			return []string{down}, errors.New("consul lookup of foreshape: connection refused")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for n.JoinError() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	err := n.JoinError()
	if want := "1 of bootstrap_expect = 3 voting servers found"; err == nil || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "the lookup of servers failed: consul lookup of foreshape: connection refused") ||
		!strings.Contains(err.Error(), "no foreshape server answered at "+down) {
		t.Errorf("join error %v; want %q and the lookup's error", err, want)
	}
}

// TestJoinFromAnUnreachableAddressRefused: the leader refuses a server
// whose Raft address (a wrong advertise_addr) it cannot reach, and the
// server's join error says so, instead of adding a member that never
// hears from the cluster.
func TestJoinFromAnUnreachableAddressRefused(t *testing.T) {
	t.Parallel()
	leader, _ := tcpServer(t, t.TempDir(), &registry{}, func(c *cluster.Config) {
		c.Discover, c.BootstrapExpect, c.Bootstrap = nil, 0, true
	})
	waitLeading(t, leader)
	st, err := leader.Status()
	if err != nil {
		t.Fatal(err)
	}
	wrong := closedAddr(t)
	joiner, _ := tcpServer(t, t.TempDir(), &registry{}, func(c *cluster.Config) {
		c.Discover, c.RetryJoin, c.AdvertiseAddr = nil, []string{st.Address}, wrong
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := joiner.JoinError(); err != nil && strings.Contains(err.Error(), "join") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := "the leader cannot reach this server at " + wrong
	if err := joiner.JoinError(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("join error %v, want it to say %q", err, want)
	}
	if st, err := leader.Status(); err != nil || len(st.Servers) != 1 {
		t.Errorf("the leader's configuration: %+v, %v; want itself alone", st.Servers, err)
	}
}

// closedAddr returns a loopback address nothing listens on. It is on
// 127.0.0.2, where no test listens (they listen on 127.0.0.1): on
// 127.0.0.1 a port just closed was taken now and then by a server of
// another test process (make test runs packages at once), which then
// answered there (TestJoinSaysWhoDidNotAnswer, in stress runs).
func closedAddr(t *testing.T) string {
	t.Helper()
	return closedAddrs(t, 1)[0]
}

// closedAddrs returns n distinct such addresses: each listener stays open
// until all are chosen (the kernel may hand a port just closed out again).
func closedAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// TestDeadServerRemoved: a server silent longer than RemoveAfter leaves
// the configuration; the leader never removes itself.
func TestDeadServerRemoved(t *testing.T) {
	c := clustertest.New(t, 3, func(int) raft.FSM { return &listFSM{} }, func(i int, cfg *cluster.Config) {
		cfg.ReconcileInterval, cfg.PromoteAfter, cfg.RemoveAfter = 20*time.Millisecond, 100*time.Millisecond, 300*time.Millisecond
	})
	l := c.Leader()
	dead := (l + 1) % 3
	c.Stop(dead)
	c.Eventually("the dead server removed", func() bool {
		st, err := c.Nodes[l].Status()
		return err == nil && len(st.Servers) == 2
	})
	st, _ := c.Nodes[l].Status()
	for _, s := range st.Servers {
		if s.ID == fmt.Sprintf("node%d", dead) {
			t.Errorf("node%d is still in the configuration: %+v", dead, st.Servers)
		}
	}
	c.Apply([]byte("two left"), dead)
}

// TestLateJoinerGetsItsRemoveAfter: a server that enters the configuration
// in the middle of a term and does not answer is removed RemoveAfter after
// it entered, not at once because the term began longer ago than that (a
// server that joined with an address the leader cannot reach was removed
// a second after joining, logged as silent since the term began, and
// joined again every few seconds).
func TestLateJoinerGetsItsRemoveAfter(t *testing.T) {
	// In parallel, though in memory with 50 ms timeouts: its one server
	// elects itself, and a busy machine only makes the removal it
	// times later, never sooner.
	t.Parallel()
	const removeAfter = 2 * time.Second
	c := clustertest.New(t, 1, func(int) raft.FSM { return &listFSM{} }, func(i int, cfg *cluster.Config) {
		cfg.ReconcileInterval, cfg.RemoveAfter = 20*time.Millisecond, removeAfter
	})
	l := c.Leader()
	time.Sleep(removeAfter + 500*time.Millisecond) // the term is older than RemoveAfter
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.Timeout)
	defer cancel()
	added := time.Now()
	if err := c.Nodes[l].AddNonvoter(ctx, "late", closedAddr(t)); err != nil {
		t.Fatal(err)
	}
	c.Eventually("the silent late joiner removed", func() bool {
		st, err := c.Nodes[l].Status()
		return err == nil && len(st.Servers) == 1
	})
	// The leader counts the silence from a round after the add at the
	// earliest, so a removal seen sooner than RemoveAfter after it is one
	// counted from before the server existed.
	if d := time.Since(added); d < removeAfter {
		t.Errorf("the late joiner was removed %v after it joined; want at least remove_after (%v)", d.Round(time.Millisecond), removeAfter)
	}
}

// TestNonvoterNeverPromoted: a server that asks not to vote stays a
// non-voter even when a voter is missing; one that may vote is promoted.
func TestNonvoterNeverPromoted(t *testing.T) {
	c := clustertest.New(t, 3, func(int) raft.FSM { return &listFSM{} }, func(i int, cfg *cluster.Config) {
		cfg.ReconcileInterval, cfg.PromoteAfter = 20*time.Millisecond, 100*time.Millisecond
	})
	l := c.Leader()
	quiet := c.AddNode(&listFSM{}, func(cfg *cluster.Config) { cfg.Nonvoter = true })
	addNonvoter(t, c, "node3", c.Address(quiet))
	dead := (l + 1) % 3
	c.Stop(dead)
	time.Sleep(500 * time.Millisecond) // five PromoteAfter periods
	if s := suffrage(t, c.Nodes[l]); s["node3"] != "nonvoter" {
		t.Fatalf("configuration %v: the server that asked not to vote was promoted", s)
	}
	spare := c.AddNode(&listFSM{}, nil)
	addNonvoter(t, c, "node4", c.Address(spare), dead)
	c.Eventually("the willing spare promoted in place of the dead voter", func() bool {
		s := suffrage(t, c.Nodes[l])
		return s["node4"] == "voter" && s[fmt.Sprintf("node%d", dead)] == "nonvoter" && s["node3"] == "nonvoter"
	})
}

// TestPromotionNeedsNoLaterWrite: right after promoting a server, the
// leader writes an entry of its own, so that the promotion commits without
// waiting for anyone's next write. Raft may drop the new voter's
// acknowledgement of the promotion itself (countNewVoter); a promotion that
// needs the new voter to commit, as one in place of a dead voter of three,
// then waited for the next write, which a quiet cluster never makes
// (TestNonvoterNeverPromoted in CI: the dead voter was never demoted). The
// window for that is microseconds wide, so this test checks for the entry
// that closes it instead of waiting for the race.
func TestPromotionNeedsNoLaterWrite(t *testing.T) {
	stores := make([]*raft.InmemStore, 3)
	c := clustertest.New(t, 3, func(int) raft.FSM { return &listFSM{} }, func(i int, cfg *cluster.Config) {
		// Four voters wanted: the leader promotes the spare as a missing
		// voter and then has nothing more to change or write.
		cfg.Voters, cfg.ReconcileInterval = 4, 20*time.Millisecond
		stores[i] = raft.NewInmemStore()
		cfg.LogStore = stores[i]
	})
	l := c.Leader()
	spare := c.AddNode(&listFSM{}, nil)
	addNonvoter(t, c, "node3", c.Address(spare))
	logs := stores[l]
	c.Eventually("an entry after the spare's promotion, committed", func() bool {
		promoted := promotionIndex(t, logs, "node3")
		last, err := logs.LastIndex()
		st, serr := c.Nodes[l].Status()
		return promoted > 0 && err == nil && last > promoted && serr == nil && st.CommitIndex > promoted
	})
}

// promotionIndex returns the index of the first entry of logs whose
// configuration has id as a voter; 0 when there is none.
func promotionIndex(t *testing.T, logs raft.LogStore, id string) uint64 {
	t.Helper()
	first, err := logs.FirstIndex()
	if err != nil || first == 0 {
		return 0
	}
	last, err := logs.LastIndex()
	if err != nil {
		return 0
	}
	for i := first; i <= last; i++ {
		var e raft.Log
		if err := logs.GetLog(i, &e); err != nil || e.Type != raft.LogConfiguration {
			continue
		}
		for _, s := range raft.DecodeConfiguration(e.Data).Servers {
			if string(s.ID) == id && s.Suffrage == raft.Voter {
				return i
			}
		}
	}
	return 0
}

// TestTCPMutualTLS: servers with certificates from the cluster's CA form a
// cluster over TLS; a server with a certificate from another CA, and a
// plain-text client, are refused.
func TestTCPMutualTLS(t *testing.T) {
	t.Parallel()
	ca, other := testpki.NewCA(t, "foreshape"), testpki.NewCA(t, "intruder")
	tlsFor := func(ca *testpki.CA, name string) *cluster.TLS {
		return &cluster.TLS{Certificate: ca.Issue(t, name).TLSCertificate(t), CAs: ca.Pool()}
	}
	reg := &registry{}
	root := t.TempDir()
	var nodes []*cluster.Node
	for i := range 3 {
		n, _ := tcpServer(t, filepath.Join(root, fmt.Sprintf("s%d", i)), reg, func(c *cluster.Config) {
			c.TLS = tlsFor(ca, fmt.Sprintf("s%d", i))
		})
		nodes = append(nodes, n)
	}
	l := leaderOf(t, nodes...)
	apply(t, l, []byte("over tls"))
	st, _ := l.Status()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var info cluster.ServerInfo
	good := &cluster.RPCClient{TLS: tlsFor(ca, "client")}
	if err := good.Call(ctx, st.Address, cluster.OpInfo, nil, &info); err != nil || info.ID == "" {
		t.Fatalf("a call with the cluster's CA: %v (%+v)", err, info)
	}
	bad := &cluster.RPCClient{TLS: tlsFor(other, "intruder")}
	if err := bad.Call(ctx, st.Address, cluster.OpInfo, nil, &info); err == nil {
		t.Error("a call with another CA's certificate was answered")
	}
	plain := &cluster.RPCClient{}
	if err := plain.Call(ctx, st.Address, cluster.OpInfo, nil, &info); err == nil {
		t.Error("a plain-text call was answered")
	}
	// A server with another CA's certificate never joins.
	_, _ = tcpServer(t, filepath.Join(root, "intruder"), reg, func(c *cluster.Config) { c.TLS = tlsFor(other, "intruder") })
	time.Sleep(500 * time.Millisecond)
	if s := suffrage(t, l); len(s) != 3 {
		t.Errorf("configuration %v: the intruder joined", s)
	}
	// The leader hands leadership over and stops: raft's replication
	// pipeline, which foreshape's transport no longer uses, wedged raft's
	// shutdown after a hand-over now and then here.
	if err := l.Close(); err != nil {
		t.Errorf("close the leader: %v", err)
	}
}

// TestTLSRotation: a server's and a client's certificates and CAs
// rotated with Rotate are what every later handshake uses, without a
// restart: after the cluster moves to a new CA, a client still holding the
// old one is refused, and one rotated to the new one is answered, its own
// certificate checked against the server's new CAs.
func TestTLSRotation(t *testing.T) {
	before, after := testpki.NewCA(t, "foreshape"), testpki.NewCA(t, "foreshape-2027")
	serverTLS := &cluster.TLS{Certificate: before.Issue(t, "s0").TLSCertificate(t), CAs: before.Pool()}
	n, _ := tcpServer(t, filepath.Join(t.TempDir(), "s0"), &registry{}, func(c *cluster.Config) { c.TLS = serverTLS })
	st, _ := n.Status()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := func(c *cluster.RPCClient) error {
		var info cluster.ServerInfo
		return c.Call(ctx, st.Address, cluster.OpInfo, nil, &info)
	}
	oldClient := &cluster.RPCClient{TLS: &cluster.TLS{Certificate: before.Issue(t, "c-old").TLSCertificate(t), CAs: before.Pool()}}
	newClient := &cluster.RPCClient{TLS: &cluster.TLS{Certificate: after.Issue(t, "c-new").TLSCertificate(t), CAs: after.Pool()}}
	if err := call(oldClient); err != nil {
		t.Fatalf("before the rotation, a client of the first CA: %v", err)
	}
	if err := call(newClient); err == nil {
		t.Fatal("before the rotation, a client of the second CA was answered")
	}

	serverTLS.Rotate(after.Issue(t, "s0").TLSCertificate(t), after.Pool())
	if err := call(newClient); err != nil {
		t.Errorf("after the rotation, a client of the second CA: %v", err)
	}
	if err := call(oldClient); err == nil {
		t.Error("after the rotation, a client of the first CA was answered")
	}
	// The client side rotates too: the same RPCClient, given the new CA's
	// certificate and CAs, is answered.
	oldClient.TLS.Rotate(after.Issue(t, "c-old").TLSCertificate(t), after.Pool())
	if err := call(oldClient); err != nil {
		t.Errorf("a client rotated to the second CA: %v", err)
	}
}

func TestLoadOrCreateNodeID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	id, err := cluster.LoadOrCreateNodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := cluster.LoadOrCreateNodeID(dir)
	if err != nil || again != id {
		t.Fatalf("second load: %q, %v; want %q", again, err, id)
	}
	other, _ := cluster.LoadOrCreateNodeID(t.TempDir())
	if other == id {
		t.Errorf("two data dirs share the id %s", id)
	}
	if err := os.WriteFile(filepath.Join(dir, "node-id"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.LoadOrCreateNodeID(dir); err == nil {
		t.Error("a corrupt node-id file was accepted")
	}
}

// TestAdvertiseRequired: a server bound to every interface must be told
// which address its peers dial.
func TestAdvertiseRequired(t *testing.T) {
	t.Parallel()
	cfg := cluster.Config{NodeID: "a", BindAddr: "0.0.0.0:0", InMemory: true, Bootstrap: true}
	if n, err := cluster.New(cfg, &listFSM{}, nil); err == nil {
		n.Close()
		t.Fatal("a server bound to 0.0.0.0 without an advertise address started")
	} else if !strings.Contains(err.Error(), "0.0.0.0") || !strings.Contains(err.Error(), "advertise") {
		t.Errorf("error %q does not name the address and the advertise setting", err)
	}
	cfg.AdvertiseAddr = "127.0.0.1:17577"
	n, err := cluster.New(cfg, &listFSM{}, clustertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitLeading(t, n)
	if st, _ := n.Status(); st.Address != "127.0.0.1:17577" {
		t.Errorf("advertised %s", st.Address)
	}
}

// TestJoinLogsANewReasonAtOnce: a server waiting to join logs why at once,
// and again as soon as the reason changes (here the lookup starts to fail),
// not only at its next once-a-minute reminder; the same reason is not
// logged again meanwhile.
func TestJoinLogsANewReasonAtOnce(t *testing.T) {
	var failing atomic.Bool
	logs := &logBuffer{}
	_, _ = tcpServerLog(t, t.TempDir(), &registry{}, func(c *cluster.Config) {
		c.Discover = func(context.Context) ([]string, error) {
			if failing.Load() {
				return nil, errors.New("consul lookup of foreshape: connection refused")
			}
			return nil, nil
		}
	}, teeLogger(t, "s", logs))
	clustertest.Eventually(t, "the first reason logged", func() bool {
		return strings.Count(logs.String(), "not part of a cluster yet") == 1
	})
	time.Sleep(300 * time.Millisecond) // six more tries at 50 ms, the same reason
	if c := strings.Count(logs.String(), "not part of a cluster yet"); c != 1 {
		t.Errorf("the same reason logged %d times in 300 ms; want once", c)
	}
	failing.Store(true)
	clustertest.Eventually(t, "the lookup's failure logged", func() bool {
		return strings.Contains(logs.String(), "the lookup of servers failed: consul lookup of foreshape: connection refused")
	})
}
