package cluster_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foreshape/foreshape/agent/cluster"
	"github.com/foreshape/foreshape/agent/cluster/clustertest"
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
