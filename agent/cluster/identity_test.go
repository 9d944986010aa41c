package cluster_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// waitClusterID waits until n has a cluster ID and returns it.
func waitClusterID(t *testing.T, n *cluster.Node) string {
	t.Helper()
	var id string
	clustertest.Eventually(t, "a cluster id", func() bool {
		id = n.ClusterID()
		return id != ""
	})
	return id
}

// alone starts a single server that bootstraps a cluster of its own in
// dir, at addr ("127.0.0.1:0" for any port).
func alone(t *testing.T, dir, addr string, logs *logBuffer) *cluster.Node {
	t.Helper()
	n, _ := tcpServerLog(t, dir, &registry{}, func(c *cluster.Config) {
		c.Discover, c.BootstrapExpect, c.Bootstrap, c.BindAddr = nil, 0, true, addr
	}, teeLogger(t, filepath.Base(dir), logs))
	waitLeading(t, n)
	return n
}

// TestOtherClustersServerRefused: a server holding the Raft state of
// another cluster, given this cluster's address to join, is not added: it
// says which two clusters its state and the servers belong to and what to
// do, and the leader refuses such a join even when asked directly.
func TestOtherClustersServerRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := alone(t, t.TempDir(), "127.0.0.1:0", &logBuffer{})
	aID := waitClusterID(t, a)
	apply(t, a, []byte("a1"))
	st, err := a.Status()
	if err != nil {
		t.Fatal(err)
	}

	bDir := t.TempDir()
	b := alone(t, bDir, "127.0.0.1:0", &logBuffer{})
	bID := waitClusterID(t, b)
	if bID == aID {
		t.Fatalf("two clusters made the same id %s", aID)
	}
	apply(t, b, []byte("b1"))
	b.Close()

	// b's server comes back with cluster a's address to join, as one whose
	// own cluster cannot elect a leader (its peers gone) would: here it
	// does not stand for election within the test.
	b2, _ := tcpServer(t, bDir, &registry{}, func(c *cluster.Config) {
		c.Discover, c.BootstrapExpect, c.RetryJoin = nil, 0, []string{st.Address}
		slowToElect(c)
	})
	var jerr error
	clustertest.Eventually(t, "the join refused", func() bool {
		jerr = b2.JoinError()
		return errors.Is(jerr, cluster.ErrOtherCluster)
	})
	t.Logf("join error: %v", jerr)
	for _, want := range []string{aID, bID, "move its data_dir aside", "retry_join"} {
		if !strings.Contains(jerr.Error(), want) {
			t.Errorf("join error %q; want it to say %q", jerr, want)
		}
	}
	if st, _ := a.Status(); len(st.Servers) != 1 {
		t.Errorf("cluster a's configuration %+v; want its server alone", st.Servers)
	}
	if st, _ := b2.Status(); len(st.Servers) != 1 || st.LeaderID != "" {
		t.Errorf("b's server: configuration %+v, leader %q; want its own cluster's, no leader", st.Servers, st.LeaderID)
	}

	// Asked directly, a's leader refuses a joiner of another cluster.
	b2st, _ := b2.Status()
	err = (&cluster.RPCClient{}).Call(ctx, st.Address, cluster.OpJoin,
		cluster.ServerInfo{ID: "0d7f6c0e-6c32-4c4e-9a61-1d1c8a7e0b0b", RaftAddress: b2st.Address, ClusterID: bID}, nil)
	if err == nil || !strings.Contains(err.Error(), "holds the Raft state of cluster "+bID) || !strings.Contains(err.Error(), aID) {
		t.Errorf("a direct join from cluster %s: %v; want it refused naming both ids", bID, err)
	}
	if st, _ := a.Status(); len(st.Servers) != 1 {
		t.Errorf("cluster a's configuration %+v after the direct join; want its server alone", st.Servers)
	}
}

// TestClusterIDSpreadsAndUpgrades: the three servers of a new cluster
// share one ID; a server whose data dir has no ID (kept by a release
// before IDs) rejoins, from a new address, and takes the cluster's.
func TestClusterIDSpreadsAndUpgrades(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	logs := []*logBuffer{{}, {}, {}}
	nodes, _, _ := threeWithLeader(t, root, nil, logs, 2)
	id := waitClusterID(t, nodes[0])
	if st, err := nodes[0].Status(); err != nil || st.ClusterID != id {
		t.Errorf("status %+v, %v; want cluster id %s", st, err, id)
	}
	for i, n := range nodes[1:] {
		if got := waitClusterID(t, n); got != id {
			t.Errorf("s%d has cluster id %s; want the leader's %s", i+1, got, id)
		}
	}

	// s2 as a release before cluster IDs left it: state, no ID.
	nodes[2].Close()
	dir := filepath.Join(root, "s2")
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Set([]byte("foreshape_cluster_id"), nil); err != nil {
		t.Fatal(err)
	}
	store.Close()
	back, _ := tcpServer(t, dir, &registry{}, func(c *cluster.Config) {
		c.Discover, c.BootstrapExpect, c.Voters = nil, 0, 3
		slowToElect(c)
		st, _ := nodes[0].Status()
		c.RetryJoin = []string{st.Address}
	})
	if got := back.ClusterID(); got != "" {
		t.Fatalf("the old data dir has cluster id %q; want none", got)
	}
	deadline := time.Now().Add(clustertest.Timeout)
	for back.ClusterID() != id && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := back.ClusterID(); got != id {
		t.Errorf("the upgraded server has cluster id %q; want the cluster's %s (join error %v)", got, id, back.JoinError())
	}
	apply(t, nodes[0], []byte("after"))
}

// ghostCluster starts two servers of a three-voter cluster whose third
// voter never starts, so that its leader never hears from every server:
// made by this release (the two bootstrap it), or, with legacy, from a data
// dir a release before cluster IDs bootstrapped (raft's own bootstrap,
// without foreshape's). It returns the two and the leader among them.
func ghostCluster(t *testing.T, root string, legacy bool) ([]*cluster.Node, *cluster.Node) {
	t.Helper()
	dirs := []string{filepath.Join(root, "a0"), filepath.Join(root, "a1")}
	addrs := closedAddrs(t, 3)
	ghost := cluster.Server{ID: "5b0c6c2e-1f0e-4a53-9d3f-6f1f0f6a9c11", Address: addrs[2], Voter: true}
	var servers []cluster.Server
	for i, dir := range dirs {
		id, err := cluster.LoadOrCreateNodeID(dir)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, cluster.Server{ID: id, Address: addrs[i], Voter: true})
	}
	servers = append(servers, ghost)
	if legacy {
		for i, dir := range dirs {
			legacyBootstrap(t, dir, servers[i], servers)
		}
	}
	var nodes []*cluster.Node
	for i, dir := range dirs {
		n, _ := tcpServer(t, dir, &registry{}, func(c *cluster.Config) {
			c.Discover, c.BootstrapExpect, c.Voters, c.BindAddr = nil, 0, 3, servers[i].Address
		})
		if !legacy {
			if err := n.Bootstrap(servers...); err != nil {
				t.Fatal(err)
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, leaderOf(t, nodes...)
}

// legacyBootstrap leaves in dir the Raft state a release before cluster
// IDs made when it bootstrapped a cluster of servers: a configuration, no
// cluster ID.
func legacyBootstrap(t *testing.T, dir string, self cluster.Server, servers []cluster.Server) {
	t.Helper()
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(self.Address))
	defer trans.Close()
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(self.ID)
	var conf raft.Configuration
	for _, s := range servers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address)})
	}
	if err := raft.BootstrapCluster(rc, store, store, snaps, trans, conf); err != nil {
		t.Fatal(err)
	}
}

// TestOtherClustersServerRefusedFromTheStart: a server of another cluster
// is refused however young the cluster it is given to join: one with an
// ID, by a cluster that made its own the moment its first leader was
// elected (it does not wait to hear from every server, and never takes the
// joiner's), or by a cluster from before IDs that has none to compare; one
// from before IDs (no ID of its own), by what its Raft configuration
// names: none of this cluster's servers.
func TestOtherClustersServerRefusedFromTheStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// legacyA: the cluster joined is from before IDs; legacyB: the
		// joiner's state is.
		legacyA, legacyB bool
		want             []string
	}{
		{name: "new cluster, joiner with an id", want: []string{"move its data_dir aside", "retry_join"}},
		{name: "cluster without an id, joiner with one", legacyA: true, want: []string{"this cluster has no cluster ID", "move its data_dir aside"}},
		{name: "new cluster, joiner from before ids", legacyB: true, want: []string{"none of which", "move its data_dir aside"}},
		{name: "both from before ids", legacyA: true, legacyB: true, want: []string{"none of which", "move its data_dir aside"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nodes, leader := ghostCluster(t, t.TempDir(), tc.legacyA)
			if !tc.legacyA {
				waitClusterID(t, leader)
			}
			aID := leader.ClusterID()
			conf, err := leader.Status()
			if err != nil {
				t.Fatal(err)
			}
			apply(t, leader, []byte("a1"))

			bDir := t.TempDir()
			bID := ""
			var bAddr string
			if tc.legacyB {
				id, err := cluster.LoadOrCreateNodeID(bDir)
				if err != nil {
					t.Fatal(err)
				}
				addrs := closedAddrs(t, 2)
				self := cluster.Server{ID: id, Address: addrs[0], Voter: true}
				legacyBootstrap(t, bDir, self, []cluster.Server{self, {ID: "7d3e9a10-2b4c-4d5e-8f60-718293a4b5c6", Address: addrs[1], Voter: true}})
				bAddr = self.Address
			} else {
				b := alone(t, bDir, "127.0.0.1:0", &logBuffer{})
				bID = waitClusterID(t, b)
				b.Close()
				bAddr = "127.0.0.1:0"
			}
			var addrs []string
			for _, n := range nodes {
				st, _ := n.Status()
				addrs = append(addrs, st.Address)
			}
			b2, _ := tcpServer(t, bDir, &registry{}, func(c *cluster.Config) {
				c.Discover, c.BootstrapExpect, c.RetryJoin, c.BindAddr = nil, 0, addrs, bAddr
				slowToElect(c)
			})
			var jerr error
			deadline := time.Now().Add(clustertest.Timeout)
			for time.Now().Before(deadline) {
				if jerr = b2.JoinError(); jerr != nil && strings.Contains(jerr.Error(), "move its data_dir aside") {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("join error: %v", jerr)
			if jerr == nil {
				t.Fatalf("the other cluster's server joined (configuration now %+v, cluster id %q)", mustStatus(t, leader).Servers, leader.ClusterID())
			}
			want := tc.want
			if tc.legacyA || tc.legacyB {
				// The leader refused it, naming it.
				want = append(want, nodeID(t, b2))
			}
			for _, want := range want {
				if !strings.Contains(jerr.Error(), want) {
					t.Errorf("join error %q; want it to say %q", jerr, want)
				}
			}
			// A follower relays the leader's refusal as it is.
			for _, line := range strings.Split(jerr.Error(), "\n") {
				if strings.Count(line, "rpc join to") > 1 {
					t.Errorf("join error %q: a relayed refusal is wrapped twice", line)
				}
			}
			if bID != "" && !strings.Contains(jerr.Error(), bID) {
				t.Errorf("join error %q; want it to name the joiner's cluster %s", jerr, bID)
			}
			if got := mustStatus(t, leader).Servers; len(got) != len(conf.Servers) {
				t.Errorf("configuration %+v; want it unchanged, %+v", got, conf.Servers)
			}
			if got := leader.ClusterID(); got != aID {
				t.Errorf("the cluster's id is %q; want it unchanged (%q), never the joiner's %q", got, aID, bID)
			}
		})
	}
}

func mustStatus(t *testing.T, n *cluster.Node) cluster.Status {
	t.Helper()
	st, err := n.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}
